"""The LightningModule: update isolation inside a real Trainer, the inference API, loading."""

import pytest
import pytorch_lightning as pl
import torch

from ogan_pl import OGAN
from ogan_pl.data import ShapesDataModule
from ogan_pl.method.correlation import standardize
from tests.conftest import quiet_cpu_trainer


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class UpdateIsolation(pl.Callback):
    """Checks around every optimizer step that E's step leaves G alone and G's step leaves E alone."""

    def __init__(self):
        self.checked = {"e": 0, "g": 0}

    def on_train_start(self, trainer, model):
        opt_e, opt_g = trainer.optimizers
        state = {}

        def e_pre(opt, *_):
            state["g"], state["e"] = snapshot(model.G), snapshot(model.E)

        def e_post(opt, *_):
            assert same(state["g"], snapshot(model.G)), "the E step changed G"
            assert not same(state["e"], snapshot(model.E)), "the E step did not change E"
            state["e_grads"] = [p.grad.clone() for p in model.E.parameters()]
            self.checked["e"] += 1

        def g_pre(opt, *_):
            state["e"], state["g"] = snapshot(model.E), snapshot(model.G)
            # the G backward built no E weight gradients: they are still those of the E step
            assert same(state["e_grads"], [p.grad for p in model.E.parameters()]), "the G step touched E's grads"

        def g_post(opt, *_):
            assert same(state["e"], snapshot(model.E)), "the G step changed E"
            assert not same(state["g"], snapshot(model.G)), "the G step did not change G"
            self.checked["g"] += 1

        opt_e.register_step_pre_hook(e_pre)
        opt_e.register_step_post_hook(e_post)
        opt_g.register_step_pre_hook(g_pre)
        opt_g.register_step_post_hook(g_post)

    def on_train_batch_end(self, trainer, model, outputs, batch, batch_idx):
        assert all(p.requires_grad for p in model.E.parameters()), "E left frozen after the G step"


def tiny_trainer(steps_per_iter: int, iters: int, callbacks=()) -> pl.Trainer:
    return quiet_cpu_trainer(iters * steps_per_iter, callbacks)


def tiny_data(**kwargs) -> ShapesDataModule:
    return ShapesDataModule(size=64, resolution=32, batch_size=8, holdout_size=16, **kwargs)


def test_e_and_g_steps_only_move_their_own_network(make_model):
    model = make_model(**{"train.n_critic": 2})
    probe = UpdateIsolation()
    tiny_trainer(3, 3, [probe]).fit(model, datamodule=tiny_data(batches_per_step=2))
    assert probe.checked == {"e": 6, "g": 3}
    assert model.g_iter == 3 and model.images_seen == 3 * 16


def test_ema_tracks_the_live_weights(make_model):
    model = make_model()
    initial = snapshot(model.G_ema.module)
    tiny_trainer(2, 3).fit(model, datamodule=tiny_data())
    ema, live = snapshot(model.G_ema.module), snapshot(model.G)
    assert not same(ema, initial) and not same(ema, live)
    # after 3 updates with warm-up decays 2/11, 3/12, 4/13 the EMA sits between init and live
    assert all(torch.allclose(e, i, atol=1) for e, i in zip(ema, initial, strict=True))


def test_inference_api(make_model):
    model = make_model()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    code = model.encode(x)
    assert code.shape == (4, model.z_dim)
    torch.testing.assert_close(model.reconstruct(x), model.decode(0.9 * standardize(code)))
    recon = model.reconstruct(x)
    assert recon.shape == x.shape and recon.abs().max() <= 1
    path = model.interpolate(x[:2], x[2:], steps=5)
    assert path.shape == (2, 5, 3, 32, 32)
    torch.testing.assert_close(path[:, 0], recon[:2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(path[:, -1], recon[2:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.sample(3, seed=7), model.sample(3, seed=7))
    assert not torch.allclose(model.sample(3, seed=7), model.sample(3, seed=8))
    assert model.training and model.G.training  # inference left the live nets in train mode


def test_inference_uses_ema_by_default(make_model):
    model = make_model()
    with torch.no_grad():
        for p in model.G.parameters():
            p.add_(0.05)
    z = torch.randn(2, model.z_dim)
    torch.testing.assert_close(model.decode(z), model.G_ema.module(z))
    assert not torch.allclose(model.decode(z), model.decode(z, use_ema=False))


def test_load_from_checkpoint_needs_no_arguments(make_model, tmp_path):
    model = make_model()
    trainer = tiny_trainer(2, 2)
    trainer.fit(model, datamodule=tiny_data())
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = OGAN.load_from_checkpoint(tmp_path / "m.ckpt")
    assert loaded.g_iter == 2
    z = torch.randn(3, model.z_dim)
    torch.testing.assert_close(loaded.decode(z), model.decode(z))


def test_joint_update_honours_both_optimizer_configs(make_model):
    """train.update=joint steps E's optimizer and G's optimizer, each as configured."""
    model = make_model(
        **{
            "train.update": "joint",
            "optim": "adam",
            "optim.generator._name_": "sgd",
            "~optim.generator.betas": "[0.5,0.999]",
            "optim.lr_g": 0.01,
        }
    )
    opt_e, opt_g = model.configure_optimizers()
    assert type(opt_e) is torch.optim.Adam and type(opt_g) is torch.optim.SGD
    assert opt_g.param_groups[0]["lr"] == 0.01 and opt_e.param_groups[0]["lr"] == 2e-4
    e_params = {id(p) for p in [*model.E.parameters(), *model.head.parameters()]}
    assert {id(p) for g in opt_e.param_groups for p in g["params"]} == e_params
    assert {id(p) for g in opt_g.param_groups for p in g["params"]} == {id(p) for p in model.G.parameters()}
    before_e, before_g = snapshot(model.E), snapshot(model.G)
    tiny_trainer(2, 1).fit(model, datamodule=tiny_data())
    assert not same(before_e, snapshot(model.E)) and not same(before_g, snapshot(model.G))


def test_bare_loop_and_lightning_run_the_same_step(make_model):
    """bench's bare loop calls the module's own train_iteration: from the same weights and data,
    one generator iteration with and without Lightning gives the same weights."""
    from ogan_pl.tools.bench import BareLoop

    class FirstBatch(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.images = batch["image"].clone()

    lightning, bare = make_model(seed=3), make_model(seed=3)
    first = FirstBatch()
    tiny_trainer(2, 1, [first]).fit(lightning, datamodule=tiny_data())
    loop = BareLoop(bare, torch.device("cpu"), "32-true", seed=0)
    loop.step(first.images)
    assert bare.g_iter == lightning.g_iter == 1
    for a, b in zip(lightning.state_dict().values(), bare.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("loss", ["gan_qp", "hinge", "wgan_gp", "nsgan", "lsgan", "rpgan"])
@pytest.mark.parametrize("update", ["alternating", "joint"])
def test_resnet_trains_with_every_loss_and_both_schemes(make_model, loss, update):
    """model=resnet plugs into the unchanged training step: every loss, both update schemes, with
    and without augmentation; both networks move and the losses stay finite."""
    extra = {"loss.r1_gamma": 1.0} if loss in ("nsgan", "rpgan") else {}
    model = make_model(
        **{
            "model": "resnet",
            "model.width": 2,
            "loss": loss,
            "train.update": update,
            "augment": "diffaug" if loss in ("gan_qp", "rpgan") else "none",
            **extra,
        }
    )
    opt_e, opt_g = model.configure_optimizers()
    before_e, before_g = snapshot(model.E), snapshot(model.G)
    for _ in range(2):
        stats = model.train_iteration(torch.rand(8, 3, 32, 32) * 2 - 1, opt_e, opt_g, lambda loss: loss.backward())
    assert all(v.isfinite() for v in stats.values())
    assert not same(before_e, snapshot(model.E)) and not same(before_g, snapshot(model.G))


def test_resnet_with_diffaug_checkpoint_reloads_through_the_safe_loader(make_model, tmp_path):
    model = make_model(**{"model": "resnet", "model.width": 2, "model.self_modulated": True, "augment": "diffaug"})
    trainer = tiny_trainer(2, 2)
    trainer.fit(model, datamodule=tiny_data())
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = OGAN.load_from_checkpoint(tmp_path / "m.ckpt")
    assert type(loaded.augment).__name__ == "DiffAugment" and loaded.hparams.config["model"]["_name_"] == "resnet"
    z, x = torch.randn(3, model.z_dim), torch.rand(3, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded.decode(z), model.decode(z))
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x))


def test_checkpoint_from_before_augment_and_reg_every_still_loads(make_model, tmp_path):
    """Checkpoints written before `augment` and `loss.reg_every` existed load with no augmentation
    and the penalty on every update."""
    model = make_model(**{"loss": "nsgan", "loss.r1_gamma": 1.0})
    trainer = tiny_trainer(2, 1)
    trainer.fit(model, datamodule=tiny_data())
    trainer.save_checkpoint(tmp_path / "new.ckpt")
    checkpoint = torch.load(tmp_path / "new.ckpt", weights_only=True)
    config = checkpoint["hyper_parameters"]["config"]
    del config["augment"], config["loss"]["reg_every"]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    loaded = OGAN.load_from_checkpoint(tmp_path / "old.ckpt")
    assert type(loaded.augment).__name__ == "Augment" and loaded.objective.reg_every == 1
    z = torch.randn(3, model.z_dim)
    torch.testing.assert_close(loaded.decode(z), model.decode(z))


def test_resnet_checkpoint_from_before_pooling_loads_with_the_sum_it_was_trained_with(make_model, tmp_path):
    """model.pooling came (with the mean as default) after resnet checkpoints were written with the
    sum: such a checkpoint still loads as the model it was, not as today's default."""
    model = make_model(**{"model": "resnet", "model.width": 2, "model.pooling": "sum"})
    trainer = tiny_trainer(2, 1)
    trainer.fit(model, datamodule=tiny_data())
    trainer.save_checkpoint(tmp_path / "new.ckpt")
    checkpoint = torch.load(tmp_path / "new.ckpt", weights_only=True)
    del checkpoint["hyper_parameters"]["config"]["model"]["pooling"]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    loaded = OGAN.load_from_checkpoint(tmp_path / "old.ckpt")
    assert loaded.E.pooling == "sum" and loaded.hparams.config["model"]["pooling"] == "sum"
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded.encode(x), model.encode(x))


@pytest.mark.parametrize("corr_on, factor_g", [("encoder", 0.0), ("both", 1.0)])
def test_checkpoint_with_corr_on_loads_with_g_lambda_it_was_trained_with(make_model, tmp_path, corr_on, factor_g):
    """loss.corr_on (both | encoder) became loss.corr_factor_g: a checkpoint that stored corr_on loads with
    G's lambda it trained with (encoder: 0)."""
    model = make_model(**{"loss.corr_factor_g": factor_g})
    trainer = tiny_trainer(2, 1)
    trainer.fit(model, datamodule=tiny_data())
    trainer.save_checkpoint(tmp_path / "new.ckpt")
    checkpoint = torch.load(tmp_path / "new.ckpt", weights_only=True)
    loss = checkpoint["hyper_parameters"]["config"]["loss"]
    del loss["corr_factor_g"]
    loss["corr_on"] = corr_on
    torch.save(checkpoint, tmp_path / "old.ckpt")
    loaded = OGAN.load_from_checkpoint(tmp_path / "old.ckpt")
    assert loaded.objective.corr_factor_g == factor_g and "corr_on" not in loaded.hparams.config["loss"]


def test_resnet_module_pickles_for_ddp_spawn(make_model):
    import pickle

    model = make_model(**{"model": "resnet", "model.width": 2, "augment": "diffaug"})
    copy = pickle.loads(pickle.dumps(model))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.eval(), copy.eval()
    torch.testing.assert_close(copy.reconstruct(x), model.reconstruct(x))
