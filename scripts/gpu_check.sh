#!/usr/bin/env bash
# The project's GPU checks, in one call of about 9 minutes (`make gpu-check`):
#   1. the tests that need a CUDA GPU (`pytest -m gpu`);
#   2. the 64 px long run (docs/results.md, "Long runs and the encoder's health"): every variant x every
#      seed, all jobs at once on the one GPU, each stopped by the same time budget, its encoder's
#      health and the classifier metrics scored along the way (callbacks.quality);
#   3. `ogan-sweep-summary` of the jobs (summary.md) and their metrics.jsonl / result.json in one archive.
#
# Settings (environment):
#   GPU_CHECK_DIR       the folder of the jobs; must not exist yet (logs/gpu_check_<date-time>)
#   GPU_CHECK_EXPORT    a folder to copy summary.md and gpu_check.tgz into (e.g. the device tool's $OUT)
#   GPU_CHECK_MINUTES   each job's budget in whole minutes, 1-59 (6)
#   GPU_CHECK_STEPS     each job's generator iterations, if the budget does not end it first (100000)
#   GPU_CHECK_SEEDS     ("1 2 3")
#   GPU_CHECK_VARIANTS  one override per variant, space-separated
#                       ("loss.corr_weight=0 loss.corr_factor_e=1 loss.corr_factor_e=2": the plain GAN,
#                       the paper's one lambda, and the default at 64 px)
#   GPU_CHECK_RESOLUTION  the digits' size in pixels (64)
#   GPU_CHECK_EVERY     iterations between two scorings of each job (1000)
#   GPU_CHECK_ARGS      more overrides for every job (e.g. trainer.accelerator=cpu to try the plumbing)
#   GPU_CHECK_TESTS     1 runs step 1, 0 skips it (1)
#   PYTHON              the interpreter with ogan_pl installed (python3)
set -u -o pipefail

die() { echo "gpu-check: $*" >&2; exit 2; }

PYTHON=${PYTHON:-python3}
DIR=${GPU_CHECK_DIR:-logs/gpu_check_$(date +%Y%m%d_%H%M%S)}
EXPORT=${GPU_CHECK_EXPORT:-}
MINUTES=${GPU_CHECK_MINUTES:-6}
STEPS=${GPU_CHECK_STEPS:-100000}
SEEDS=${GPU_CHECK_SEEDS-1 2 3}
VARIANTS=${GPU_CHECK_VARIANTS-loss.corr_weight=0 loss.corr_factor_e=1 loss.corr_factor_e=2}
RESOLUTION=${GPU_CHECK_RESOLUTION:-64}
EVERY=${GPU_CHECK_EVERY:-1000}
ARGS=${GPU_CHECK_ARGS:-}
TESTS=${GPU_CHECK_TESTS:-1}

[[ $MINUTES =~ ^[0-9]+$ ]] && ((MINUTES >= 1 && MINUTES <= 59)) \
  || die "GPU_CHECK_MINUTES=$MINUTES: give whole minutes from 1 to 59"
[[ $STEPS =~ ^[0-9]+$ ]] && ((STEPS >= 1)) || die "GPU_CHECK_STEPS=$STEPS: give a positive whole number"
[[ $RESOLUTION =~ ^[0-9]+$ ]] || die "GPU_CHECK_RESOLUTION=$RESOLUTION: give a size in pixels such as 64"
[[ $EVERY =~ ^[0-9]+$ ]] && ((EVERY >= 1)) || die "GPU_CHECK_EVERY=$EVERY: give a positive whole number"
[[ $TESTS == 0 || $TESTS == 1 ]] || die "GPU_CHECK_TESTS=$TESTS: give 1 (run the GPU tests) or 0 (skip them)"
[[ -n ${SEEDS// /} ]] || die "GPU_CHECK_SEEDS is empty: give seeds such as \"1 2 3\""
for s in $SEEDS; do [[ $s =~ ^[0-9]+$ ]] || die "GPU_CHECK_SEEDS: '$s' is not a whole number"; done
[[ -n ${VARIANTS// /} ]] || die "GPU_CHECK_VARIANTS is empty: give one override per variant"
for v in $VARIANTS; do [[ $v == *=* ]] || die "GPU_CHECK_VARIANTS: '$v' is not an override (key=value)"; done
# a second check never writes into the first one's folder: the jobs would mix
[[ -e $DIR ]] && die "$DIR already exists: give another GPU_CHECK_DIR (two checks never share a folder)"
[[ -z $EXPORT || -d $EXPORT ]] || die "GPU_CHECK_EXPORT=$EXPORT is not a folder"
command -v "$PYTHON" > /dev/null || die "PYTHON=$PYTHON not found: give the interpreter with ogan_pl installed"
"$PYTHON" -c "import ogan_pl, pytest" 2> /dev/null \
  || die "PYTHON=$PYTHON cannot import ogan_pl and pytest: install the project there (pip install -e '.[dev]')"
mkdir -p "$DIR" || die "cannot create $DIR"

status=0
if [[ $TESTS == 1 ]]; then
  echo "== 1. the GPU-only tests"
  WANDB_MODE=offline "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee "$DIR/gpu_tests.log"
  rc=$?
  ((rc == 0 || rc == 5)) || status=1   # 5: none collected (a suite without GPU tests)
fi

echo "== 2. the long run at $RESOLUTION px: $(wc -w <<< "$VARIANTS") variants x $(wc -w <<< "$SEEDS") seeds at once, $MINUTES min each"
pids=()
trap 'kill "${pids[@]}" 2> /dev/null; wait; echo "gpu-check: stopped; the jobs so far are in $DIR" >&2; exit 130' INT TERM
for v in $VARIANTS; do
  for s in $SEEDS; do
    job="${v#loss.}_s$s"; job=${job//[^A-Za-z0-9_.-]/_}
    # shellcheck disable=SC2086  # ARGS: several overrides
    OMP_NUM_THREADS=1 WANDB_MODE=offline "$PYTHON" train.py experiment=digits_budget dataset.resolution="$RESOLUTION" \
      train.steps="$STEPS" trainer.max_time="00:00:$(printf %02d "$MINUTES"):00" \
      callbacks.quality.every_n_steps="$EVERY" "$v" seed="$s" $ARGS hydra.run.dir="$DIR/$job" \
      > "$DIR/$job.log" 2>&1 &
    pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
trap - INT TERM
for log in "$DIR"/*.log; do
  [[ $log == */gpu_tests.log ]] && continue
  echo "$(basename "$log" .log): $(grep -E 'finished at|stopped|Error|error' "$log" | tail -n 1)"
done

echo "== 3. the summary"
"$PYTHON" -m ogan_pl.tools.sweep_summary "$DIR" | tee "$DIR/summary.md" || status=1
tar czf "$DIR.tgz.part" -C "$DIR" --exclude '*.ckpt' . && mv "$DIR.tgz.part" "$DIR/gpu_check.tgz" || status=1
if [[ -n $EXPORT ]]; then cp "$DIR/summary.md" "$DIR/gpu_check.tgz" "$EXPORT"/ || status=1; fi
echo "gpu-check: results in $DIR (summary.md, gpu_check.tgz)$([[ $status == 0 ]] || echo '; SOMETHING FAILED, see the logs there')"
exit $status
