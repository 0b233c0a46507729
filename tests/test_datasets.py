"""The datasets, the decode-once cache and bad input, on fixtures the tests write (no network)."""

import io
import logging
import os
import re
import struct

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image

from ogan_pl.data import CIFAR10DataModule, ImageFolderDataModule, LSUNDataModule, MNISTDataModule
from ogan_pl.data import cache as cache_module
from ogan_pl.data.cache import cached_images
from ogan_pl.data.decode import Preprocess, decode
from ogan_pl.data.sources import FolderSource
from ogan_pl.utils.errors import UserError
from tests.conftest import ROOT
from tests.test_cli import TINY

BAD_FILES = ("empty.png", "truncated.jpg")


def picture(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def write_folder(root, n_clean: int = 10, bad: bool = True):
    """png/jpg/webp/bmp in nested folders, RGBA, palette, grayscale and 16-bit images; optionally
    a zero-byte file, a truncated jpeg and a text file."""
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    for i in range(n_clean):
        picture(40 + i, 30, i).save(root / f"clean{i:02d}.png")
    picture(50, 50, 100).save(root / "a" / "y.jpg", quality=95)
    picture(30, 60, 101).save(root / "a" / "b" / "z.webp", quality=95)
    picture(33, 33, 102).save(root / "a" / "w.bmp")
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = (255, 0, 0, 255)  # left half opaque red, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    picture(32, 32, 103).convert("L").save(root / "gray.png")
    picture(32, 32, 104).convert("P").save(root / "palette.png")
    deep = np.full((32, 32), 65535, np.uint16)
    deep[:, :16] = 32896  # 32896 / 257 = 128
    Image.fromarray(deep).save(root / "deep16.png")
    (root / "notes.txt").write_text("not an image")
    if bad:
        (root / "empty.png").write_bytes(b"")
        buffer = io.BytesIO()
        picture(64, 64, 105).save(buffer, "JPEG")
        (root / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return root


def write_lmdb(path, n: int = 12, garbage: int = 0):
    """LSUN's layout: keys are image ids, values encoded images (jpeg and webp)."""
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i in range(n):
            buffer = io.BytesIO()
            picture(48 + i, 40, 200 + i).save(buffer, "WEBP" if i % 2 else "JPEG", quality=95)
            txn.put(f"{i:040x}".encode(), buffer.getvalue())
        for i in range(garbage):
            txn.put(f"bad{i:037x}".encode(), b"\x00garbage bytes, not an image")
    env.close()
    return path


def folder_module(root, cache_dir, **kwargs) -> ImageFolderDataModule:
    return ImageFolderDataModule(
        **{
            "root": str(root),
            "resolution": 16,
            "batch_size": 4,
            "holdout_size": 2,
            "cache": True,
            "cache_dir": str(cache_dir),
            "num_workers": 0,
            **kwargs,
        }
    )


def all_images(dataset) -> torch.Tensor:
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


# ------------------------------------------------------------------ decoding
def test_modes_are_converted_faithfully(tmp_path):
    write_folder(tmp_path)
    pre = Preprocess(resolution=32)
    rgba = decode(tmp_path / "rgba.png", pre)
    assert rgba[:, :, :12].eq(torch.tensor([255, 0, 0]).view(3, 1, 1)).all()  # opaque red stays red
    assert rgba[:, :, 20:].eq(255).all()  # transparent -> white, not the hidden colour
    deep = decode(tmp_path / "deep16.png", Preprocess(32, channels=1))
    assert deep[0, :, :12].eq(128).all() and deep[0, :, 20:].eq(255).all()  # 16 bits scaled, not clipped
    gray = decode(tmp_path / "gray.png", pre)
    assert gray.shape == (3, 32, 32) and torch.equal(gray[0], gray[1])
    assert decode(tmp_path / "palette.png", pre).shape == (3, 32, 32)


def test_centre_crop_then_resize(tmp_path):
    img = np.zeros((20, 60, 3), np.uint8)
    img[:, 20:40] = 255  # the central square is white, the sides black
    Image.fromarray(img).save(tmp_path / "wide.png")
    assert decode(tmp_path / "wide.png", Preprocess(8)).min() > 200
    # crop_size caps the square: a 10x10 centre of a white image with a black border
    img = np.zeros((60, 60, 3), np.uint8)
    img[25:35, 25:35] = 255
    Image.fromarray(img).save(tmp_path / "border.png")
    assert decode(tmp_path / "border.png", Preprocess(8, crop_size=10)).min() > 200
    assert decode(tmp_path / "border.png", Preprocess(8)).float().mean() < 100


# ------------------------------------------------------------------ folder + cache
@pytest.mark.parametrize("cache", [True, False])
def test_folder_reads_every_format_and_skips_bad_files_with_one_warning(tmp_path, caplog, cache):
    write_folder(tmp_path / "imgs")
    dm = folder_module(tmp_path / "imgs", tmp_path / "cache", cache=cache)
    with caplog.at_level(logging.WARNING):
        dm.setup()
        images = torch.cat([all_images(dm.train_set), all_images(dm.holdout_set)])
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert images.shape[1:] == (3, 16, 16)
    if cache:  # every image fully decoded once: both bad files found, named, counted once
        assert len(warnings) == 1 and "skipped 2 of 19" in warnings[0]
        assert all(name in warnings[0] for name in BAD_FILES)
        assert len(images) == 17
    else:  # the header check catches the zero-byte file; the truncated jpeg is replaced at decode time
        assert len(warnings) == 1 and "skipped 1 of 19" in warnings[0] and "empty.png" in warnings[0]


@pytest.mark.parametrize("cache", [True, False])
def test_on_error_raise_names_the_file(tmp_path, cache):
    write_folder(tmp_path / "imgs")
    dm = folder_module(tmp_path / "imgs", tmp_path / "cache", cache=cache, on_error="raise")
    with pytest.raises(UserError, match=r"empty\.png|truncated\.jpg"):
        dm.setup()
        all_images(dm.train_set)


def test_cached_and_uncached_pipelines_give_the_same_pixels(tmp_path):
    write_folder(tmp_path / "imgs", bad=False)
    cached = folder_module(tmp_path / "imgs", tmp_path / "cache", cache=True)
    raw = folder_module(tmp_path / "imgs", tmp_path / "cache", cache=False)
    cached.setup(), raw.setup()
    for split in ("train_set", "holdout_set"):
        assert torch.equal(all_images(getattr(cached, split)), all_images(getattr(raw, split)))
    # and a whole shuffled batch from the loader holds the same images (order within a batch aside)
    batch = next(iter(cached.train_dataloader()))["image"]
    pool = all_images(cached.train_set).flatten(1)
    assert all((pool == img.flatten()).all(1).any() for img in batch)


def test_cache_is_built_once_reused_and_rebuilt_when_inputs_change(tmp_path, caplog):
    root = write_folder(tmp_path / "imgs", bad=False)
    pre, cache_dir = Preprocess(16), tmp_path / "cache"

    def builds(**kwargs) -> int:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ogan_pl.data.cache"):
            images = cached_images(FolderSource(root), kwargs.pop("pre", pre), cache_dir, workers=0)
        assert images.dtype == np.uint8 and isinstance(images, np.memmap)
        return sum("building the image cache" in r.getMessage() for r in caplog.records)

    assert builds() == 1
    assert builds() == 0  # reused
    assert builds(pre=Preprocess(32)) == 1  # another resolution: another file
    assert builds() == 0
    picture(40, 40, 999).save(root / "new.png")  # the dataset changed: rebuilt
    assert builds() == 1
    (array,) = [p for p in (cache_dir / "images").glob("*.npy") if np.load(p, mmap_mode="r").shape == (18, 3, 16, 16)]
    array.write_bytes(b"corrupt")
    assert builds() == 1  # a corrupt file is rebuilt, never trusted


def test_interrupted_cache_build_is_never_used(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "imgs", bad=False)
    real_decode, calls = cache_module.decode, []

    def dies_midway(data, pre):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # the job is killed while the cache is being written
        return real_decode(data, pre)

    monkeypatch.setattr(cache_module, "decode", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        cached_images(FolderSource(root), Preprocess(16), tmp_path / "cache", workers=0)
    assert not list((tmp_path / "cache" / "images").glob("*.npy"))  # nothing half-written stays
    assert not list((tmp_path / "cache" / "images").glob(".*tmp"))
    monkeypatch.setattr(cache_module, "decode", real_decode)
    images = cached_images(FolderSource(root), Preprocess(16), tmp_path / "cache", workers=0)
    direct = torch.stack([decode(p, Preprocess(16)) for p in FolderSource(root).files])
    assert torch.equal(torch.from_numpy(np.array(images)), direct)


def test_a_file_name_that_is_not_utf8_is_cached_and_named_like_any_other(tmp_path, caplog):
    root = write_folder(tmp_path / "imgs", n_clean=3, bad=False)
    odd = root / os.fsdecode(b"caf\xe9-latin1.png")  # a Latin-1 name on a UTF-8 system
    picture(32, 32, 7).save(odd)
    bad = root / os.fsdecode(b"bad-\xff.png")
    bad.write_bytes(b"not an image")
    source = FolderSource(root)
    with caplog.at_level(logging.WARNING):
        images = cached_images(source, Preprocess(16), tmp_path / "cache", workers=0)
    good = [f for f in source.files if f != bad]  # the cache holds the decodable images, in order
    assert len(images) == len(good)
    assert torch.equal(torch.from_numpy(np.array(images[good.index(odd)])), decode(odd, Preprocess(16)))
    (warning,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert "bad-\\xff.png" in warning  # printable: the undecodable byte as an escape
    warning.encode("utf-8")  # no lone surrogates reach a log


def test_on_error_raise_is_honoured_by_a_cache_built_with_skip(tmp_path):
    write_folder(tmp_path / "imgs")
    folder_module(tmp_path / "imgs", tmp_path / "cache", on_error="skip").setup()
    with pytest.raises(UserError, match=r"cannot decode .*(empty\.png|truncated\.jpg).*dataset\.on_error=skip"):
        folder_module(tmp_path / "imgs", tmp_path / "cache", on_error="raise").setup()


def test_an_image_replaced_under_the_same_name_is_decoded_again(tmp_path):
    root = write_folder(tmp_path / "imgs", n_clean=3, bad=False)
    first = cached_images(FolderSource(root), Preprocess(16), tmp_path / "cache", workers=0)
    target = root / "clean01.png"
    index = FolderSource(root).files.index(target)
    picture(41, 30, 555).save(target)  # same name, same size in pixels, other content
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = cached_images(FolderSource(root), Preprocess(16), tmp_path / "cache", workers=0)
    assert not np.array_equal(first[index], second[index])
    assert torch.equal(torch.from_numpy(np.array(second[index])), decode(target, Preprocess(16)))


SLOW_BUILD = """
import sys, time
from ogan_pl.data import cache
from ogan_pl.data.decode import Preprocess
from ogan_pl.data.sources import FolderSource
real = cache.decode
def slow(data, pre):
    time.sleep(0.2)
    return real(data, pre)
cache.decode = slow
cache.cached_images(FolderSource(sys.argv[1]), Preprocess(16), sys.argv[2], workers=2)
"""


def test_sigterm_to_the_process_group_during_a_cache_build_leaves_no_temporary_file(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root = write_folder(tmp_path / "imgs", n_clean=40, bad=False)
    folder = tmp_path / "cache" / "images"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_BUILD, str(root), str(tmp_path / "cache")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    deadline = time.time() + 60
    while not list(folder.glob(".*.tmp")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(folder.glob(".*.tmp")), "the build never started"
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)  # what scancel and a shell's job control do: the workers too
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(folder.iterdir())  # no temporary file, no array, no record


def test_a_temporary_file_left_by_a_killed_build_is_removed_by_the_next(tmp_path):
    root = write_folder(tmp_path / "imgs", n_clean=3, bad=False)
    source, pre = FolderSource(root), Preprocess(16)
    key = {
        "version": cache_module.FORMAT_VERSION,
        "source": cache_module.source_identity(source),
        "preprocess": pre.key(),
    }
    array_path, _ = cache_module.cache_paths(tmp_path / "cache", key)
    array_path.parent.mkdir(parents=True)
    dead = subprocess_pid_that_has_exited()
    stale = array_path.with_name(f".{array_path.name}.{dead}.tmp")
    stale.write_bytes(b"\0" * 4096)  # SIGKILL during a build: nothing could remove it then
    live = array_path.with_name(f".{array_path.name}.{os.getppid()}.tmp.compact")
    live.write_bytes(b"\0")  # a build of a process still running: left alone
    cached_images(source, pre, tmp_path / "cache", workers=0)
    assert not stale.exists() and live.exists()


def subprocess_pid_that_has_exited() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_float_images_are_scaled_by_their_range(tmp_path):
    ramp = np.tile(np.linspace(0.0, 1.0, 32, dtype=np.float32), (32, 1))
    Image.fromarray(ramp, mode="F").save(tmp_path / "unit.tif")
    Image.fromarray(ramp * 255, mode="F").save(tmp_path / "byte.tif")
    expected = torch.from_numpy(np.rint(ramp * 255).astype(np.uint8))
    for name in ("unit.tif", "byte.tif"):
        decoded = decode(tmp_path / name, Preprocess(32, channels=1))[0]
        assert (decoded.int() - expected.int()).abs().max() <= 1, name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"crop_size": 0}, "dataset.crop_size=0 must be a positive number of pixels"),
        ({"crop_size": -8}, "dataset.crop_size=-8 must be a positive number of pixels"),
        ({"root": ""}, "dataset.root is empty"),
    ],
)
def test_impossible_folder_settings_are_refused(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=re.escape(message)):
        folder_module(kwargs.pop("root", tmp_path), tmp_path / "cache", **kwargs)


def test_gpu_side_flip_mirrors_about_half_the_batch(tmp_path):
    dm = folder_module(write_folder(tmp_path / "imgs", bad=False), tmp_path / "cache", flip=True)
    images = torch.randint(0, 256, (256, 3, 8, 8), dtype=torch.uint8)
    out = dm.on_after_batch_transfer({"image": images.clone()}, 0)["image"]
    expected = images.float() / 127.5 - 1
    same = (out == expected).flatten(1).all(1)
    mirrored = (out == expected.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and 80 < mirrored.sum() < 176


def test_fewer_images_than_a_batch_is_a_clear_error(tmp_path):
    write_folder(tmp_path / "imgs", n_clean=0, bad=False)
    with pytest.raises(UserError, match="fewer than one step's 64"):
        folder_module(tmp_path / "imgs", tmp_path / "cache", batch_size=64).setup()


# ------------------------------------------------------------------ LSUN's LMDB
@pytest.mark.parametrize("cache", [True, False])
def test_lsun_lmdb_with_two_workers(tmp_path, cache, caplog):
    path = write_lmdb(tmp_path / "church_outdoor_train_lmdb", n=12, garbage=1)
    dm = LSUNDataModule(
        root=str(path),
        resolution=16,
        batch_size=4,
        holdout_size=2,
        crop_size=256,
        cache=cache,
        cache_dir=str(tmp_path / "cache"),
        num_workers=2,
        persistent_workers=False,
    )
    with caplog.at_level(logging.WARNING):
        dm.setup()
        seen = sum(len(batch["image"]) for _ in range(2) for batch in dm.train_dataloader())
    assert seen == 2 * (len(dm.train_set) // 4) * 4
    if cache:
        assert len(dm.train_set) + len(dm.holdout_set) == 12
        assert any("skipped 1 of 13" in r.getMessage() for r in caplog.records)
    expected = decode(
        lmdb.open(str(path), readonly=True, lock=False).begin().get(f"{0:040x}".encode()), Preprocess(16, crop_size=256)
    )
    pool = torch.cat([all_images(dm.train_set), all_images(dm.holdout_set)]).flatten(1)
    assert (pool == expected.flatten()).all(1).any()


def test_train_on_lsun_lmdb_and_on_a_folder(run_script, tmp_path):
    write_lmdb(tmp_path / "church_outdoor_train_lmdb", n=24)
    write_folder(tmp_path / "imgs", n_clean=10)
    for name, root in (("lmdb", tmp_path / "church_outdoor_train_lmdb"), ("folder", tmp_path / "imgs")):
        run_script(
            "train.py",
            *TINY[:2],
            "dataset=lsun_church",
            f"dataset.root={root}",
            "dataset.resolution=32",
            "dataset.batch_size=4",
            "dataset.num_workers=2",
            "train.steps=2",
            "callbacks.images.every_n_steps=2",
            "logger=none",
            f"hydra.run.dir={name}",
        )
        assert (tmp_path / name / "images" / "reconstructions_0000002.png").is_file()
    assert list((tmp_path / ".cache" / "ogan_pl" / "images").glob("*.npy"))  # cache on by default


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["dataset=lsun_church", "dataset.root=NOT_LMDB"],
            "is not an LMDB directory (no data.mdb in it); download LSUN",
        ),
        (["dataset=lsun_church"], "church_outdoor_train_lmdb does not exist; download LSUN with github.com/fyu/lsun"),
        (["dataset=ffhq", "dataset.root=EMPTY"], "no images"),
        (["dataset=celeba"], "does not exist; download img_align_celeba.zip"),
        (["dataset=image_folder"], "dataset.root is not set"),
    ],
)
def test_missing_or_wrong_data_is_one_line_before_any_model(run_script, tmp_path, args, message):
    (tmp_path / "x_lmdb").mkdir()
    (tmp_path / "empty").mkdir()
    args = [a.replace("NOT_LMDB", str(tmp_path / "x_lmdb")).replace("EMPTY", str(tmp_path / "empty")) for a in args]
    proc = run_script("train.py", *args, "logger=none", "hydra.run.dir=run", check=False, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1], lines[-1]


# ------------------------------------------------------------------ torchvision
def write_mnist(root, n_train: int = 20, n_test: int = 8):
    """torchvision's MNIST raw files (idx format), as its download would leave them."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + bytes(n))
    return root


def test_mnist_through_torchvision_offline(tmp_path):
    dm = MNISTDataModule(
        root=str(write_mnist(tmp_path / "mnist")),
        download=False,
        resolution=32,
        channels=1,
        batch_size=4,
        holdout_size=5,
    )
    dm.setup()
    assert len(dm.train_set) == 20 and len(dm.holdout_set) == 5
    assert dm.train_set[0]["image"].shape == (1, 32, 32) and dm.train_set[0]["image"].dtype == torch.uint8


def test_cifar10_absent_offline_is_one_line(tmp_path):
    dm = CIFAR10DataModule(root=str(tmp_path / "cifar"), download=False, resolution=32)
    with pytest.raises(UserError, match=r"CIFAR10 not found under dataset.root=.*copy torchvision's CIFAR10 files"):
        dm.setup()


# ------------------------------------------------------------------ experiments and the benchmark
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml") if not p.stem.startswith("_"))


def composed(experiment: str) -> dict:
    """The experiment's config as train.py composes it (paths are not needed here)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"])
    with open_dict(cfg):
        cfg.paths = dict.fromkeys(("root_dir", "data_dir", "cache_dir", "log_dir", "output_dir"), "unused")
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_runs_two_steps(run_script, tmp_path, inception_weights, experiment):
    """Each preset at its real resolution and model (batch 2 on fixture data), FID callback included."""
    preset = composed(experiment)
    args = [
        f"experiment={experiment}",
        "train.steps=2",
        "logger=none",
        "hydra.run.dir=run",
        "callbacks.summary.n_rho=16",
        "callbacks.quality.n_samples=16",
        "metrics.classifier.epochs=1",
    ]
    real_data = "root" in preset["dataset"]  # a folder or LMDB: fixture images stand in for it
    if real_data:
        root = (
            write_lmdb(tmp_path / "data_lmdb", n=12)
            if "lsun" in experiment
            else write_folder(tmp_path / "data", n_clean=10, bad=False)
        )
        args += [f"dataset.root={root}", "dataset.batch_size=2", "dataset.holdout_size=2", "dataset.num_workers=0"]
    if "fid" in preset["callbacks"]:
        # at_end=always: a 2-step run would skip it (at_end=auto, ogan_pl/callbacks/work.py)
        args += [
            "callbacks.fid.at_end=always",
            "callbacks.fid.n_samples=4",
            "callbacks.fid.n_real=4",
            "metrics.batch_size=4",
            f"metrics.inception_weights={inception_weights}",
        ]
    run_script(*(["train.py", *args]), timeout=600)
    stored = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    config = stored["hyper_parameters"]["config"]
    assert stored["ogan"]["g_iter"] == 2
    assert config["model"] == preset["model"]
    assert config["ogan"] == preset["ogan"] and config["loss"] == preset["loss"] and config["optim"] == preset["optim"]
    assert config["dataset"]["resolution"] == preset["dataset"]["resolution"]
    if "fid" in preset["callbacks"]:
        assert (tmp_path / "run" / "checkpoints" / "metrics.jsonl").is_file()


def test_loader_benchmark_reports_raw_and_cached_speed(tmp_path):
    import subprocess
    import sys

    root = write_folder(tmp_path / "imgs", n_clean=20, bad=False)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ogan_pl.tools.data_bench",
            "dataset=image_folder",
            f"dataset.root={root}",
            "dataset.resolution=16",
            "dataset.batch_size=4",
            "dataset.num_workers=0",
            "bench.batches=5",
            "bench.warmup=1",
            "hydra.run.dir=bench",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rates = dict(re.findall(r"^\s*(raw|cache):\s+(\d+) images/s", proc.stdout, re.MULTILINE))
    assert set(rates) == {"raw", "cache"} and all(int(v) > 0 for v in rates.values())


@pytest.mark.parametrize("layout", ["img_align_celeba", "celeba/img_align_celeba", "."])
def test_celeba_finds_the_aligned_folder_in_every_layout(tmp_path, layout):
    from ogan_pl.data import CelebADataModule

    folder = tmp_path / "celeba_root" / layout
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(12):
        picture(178, 218, i).save(folder / f"{i:06d}.jpg")
    dm = CelebADataModule(
        root=str(tmp_path / "celeba_root"), resolution=16, crop_size=140, batch_size=4, holdout_size=2, cache=False
    )
    dm.setup()
    assert len(dm.train_set) + len(dm.holdout_set) == 12
    assert dm.identity()["root"] == str(folder.resolve())
