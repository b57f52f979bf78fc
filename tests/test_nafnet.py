"""The restorer of record: identity at start, mask head, global branch, data, schedule, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repair.checkpoint import load_generator, read_checkpoint
from repair.nafnet import MaskedNAFRestorer, NAFBlock
from repair.nets import build_generator
from repair.masks import mask_scores
from repair.restorer_train import Schedule, crop_at, learning_rate, validate_restorer
from repair.synth import CLEAN_SHARE, DAMAGE_ODDS, LONE_DAMAGES, RestraintPairs, fixed_pairs, restraint_mix

pytestmark = pytest.mark.usefixtures("one_thread")


def small(**kw):
    kw = {"mask_width": 4, **kw}
    return MaskedNAFRestorer(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), **kw)


@pytest.mark.parametrize("shape", [(2, 1, 64, 64), (1, 1, 37, 50), (1, 1, 7, 9)])
def test_untrained_network_is_exactly_the_identity(shape):
    torch.manual_seed(0)
    x = torch.rand(shape) * 2 - 1
    for net in (MaskedNAFRestorer(), small(), small(global_branch=False),
                small(sharpen_branch=True)):
        net.eval()
        with torch.no_grad():
            y, logits = net(x, with_mask=True)
        assert torch.equal(y, x)
        assert logits.shape == x.shape


def test_a_given_mask_replaces_the_finders_guess():
    torch.manual_seed(0)
    net = small().eval()
    for p in net.parameters():  # a network that is no longer the identity
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.rand(1, 1, 37, 50) * 2 - 1
    none, full = torch.zeros_like(x, dtype=torch.bool), torch.ones_like(x)
    with torch.no_grad():
        own, logits = net(x, with_mask=True)
        given_none, same_logits = net(x, with_mask=True, mask=none)
        given_full = net(x, mask=full)
    assert torch.equal(logits, same_logits)  # the finder still reports its own guess
    assert not torch.equal(own, given_none) and not torch.equal(given_none, given_full)
    with pytest.raises(ValueError, match="shape of x_damaged"):
        net(x, mask=full[..., :-1])
    with pytest.raises(ValueError, match="no mask branch"):
        small(mask_width=0)(x, mask=full)


def test_block_starts_as_identity_and_learns():
    block = NAFBlock(8)
    x = torch.randn(2, 8, 16, 16)
    assert torch.equal(block(x), x)
    block(x).square().mean().backward()
    assert block.beta.grad.abs().sum() > 0 and block.gamma.grad.abs().sum() > 0


def test_default_size_fits_a_cpu():
    from torch.utils.flop_counter import FlopCounterMode

    net = build_generator("nafnet")
    params = sum(p.numel() for p in net.parameters())
    assert 1.5e6 < params < 2.5e6
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.eval()(torch.zeros(1, 1, 256, 256))
    assert counter.get_total_flops() / 2 <= 2.0e9  # multiply-accumulates at 256x256


def test_global_branch_can_undo_faded_contrast():
    net = small().eval()
    with torch.no_grad():
        net.gain.bias.copy_(torch.tensor([np.log(2.0), 0.0]))
    x = torch.rand(1, 1, 32, 32) - 0.5
    y = net(x)
    mean = x.mean()
    assert torch.allclose(y, (mean + 2 * (x - mean)).clamp(-1, 1), atol=1e-5)


def test_sharpen_branch_adds_unsharp_masks_of_the_whole_photo():
    from repair.nafnet import _gaussian_blur

    net = small(sharpen_branch=True).eval()
    amounts = torch.tensor([1.5, -0.5])
    with torch.no_grad():
        net.sharpen.bias.copy_(amounts / net.SHARPEN_SCALE)
        x = (torch.rand(1, 1, 32, 32) - 0.5) * 0.5
        y = net(x)   # the rest of the network is still the identity: it sharpens x itself
    want = x + sum(a * (x - _gaussian_blur(x, s)) for a, s in zip(amounts, net.SHARPEN_SIGMAS))
    assert torch.allclose(y, want.clamp(-1, 1), atol=1e-5)
    flat = torch.full((1, 1, 16, 16), 0.25)   # a Gaussian blur leaves a flat photo alone
    assert torch.allclose(_gaussian_blur(flat, 2.0), flat)
    assert "sharpen_branch" not in small().hparams   # old checkpoints keep their hparams
    assert build_generator("nafnet", **net.hparams).sharpen is not None


def test_sharpen_branch_grows_from_a_checkpoint_without_it(tmp_path, capsys):
    from repair.cli import main

    common = ["train", "--recipe", "restorer", "--profile", "tiny", "--quiet", "--max-steps", "1"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "a" / "G_best.pt"),
                 "--sharpen-branch"]) == 0
    grown = load_generator(tmp_path / "b" / "G_best.pt")
    assert grown.hparams["sharpen_branch"] and grown.sharpen.weight.abs().sum() > 0
    main([*common, "--out", str(tmp_path / "d"), "--init", str(tmp_path / "a" / "G_best.pt"),
          "--sharpen-branch", "--train-only", "sharpen"])
    only = load_generator(tmp_path / "d" / "G_best.pt").state_dict()
    before = load_generator(tmp_path / "a" / "G_best.pt").state_dict()
    assert all(torch.equal(only[k], v) for k, v in before.items())   # all but the branch kept
    assert only["sharpen.bias"].abs().sum() > 0
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "e"), "--train-only", "sharpen"]) != 0
    assert "add --sharpen-branch" in capsys.readouterr().err
    capsys.readouterr()   # and never shrinks back: the error names the missing option
    assert main([*common, "--out", str(tmp_path / "c"), "--init",
                 str(tmp_path / "b" / "G_best.pt")]) != 0
    assert "--sharpen-branch" in capsys.readouterr().err
    assert not (tmp_path / "c" / "last.pt").exists()


def test_rejects_colour_and_bad_hparams():
    with pytest.raises(ValueError, match="grayscale"):
        small()(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="width"):
        MaskedNAFRestorer(width=0)
    with pytest.raises(ValueError, match="enc_blocks"):
        MaskedNAFRestorer(enc_blocks=(1,) * 9, dec_blocks=(1,) * 9)


def test_restraint_mix_draws_single_mixed_and_clean():
    rng = np.random.default_rng(0)
    mixes = [restraint_mix(rng) for _ in range(2000)]
    on = np.array([[v > 0 for v in m.values()] for m in mixes])
    clean = (~on).all(1).mean()
    assert CLEAN_SHARE < clean < CLEAN_SHARE + 0.05           # clean pairs, plus the few all-off
    assert (on.sum(1) == 1).mean() > 0.1                       # single damages occur
    strengths = [v for m in mixes for v in m.values() if v > 0]
    assert min(strengths) < 0.1 and max(strengths) > 0.95      # the whole range
    with pytest.raises(ValueError):
        restraint_mix(rng, clean_share=2)


def test_lone_damages_are_one_of_the_paper_four_alone():
    rng = np.random.default_rng(1)
    mixes = [restraint_mix(rng, single_share=0.5) for _ in range(4000)]
    on = [tuple(name for name, v in m.items() if v > 0) for m in mixes]
    damaged = [names for names in on if names]
    lone = [names[0] for names in damaged if len(names) == 1]
    assert len(lone) / len(damaged) > 0.5                  # half drawn alone, plus the odds' few
    for name in LONE_DAMAGES:                              # each of the four, about equally
        assert 0.2 < lone.count(name) / len(lone) < 0.3
    assert sum(len(names) > 1 for names in damaged) / len(damaged) > 0.3   # mixes still occur
    # single_share 0 takes exactly the draws earlier versions took (old runs replay): one for
    # clean, then an on/off and a strength per damage, nothing more
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    restraint_mix(a, single_share=0.0)
    b.random(len(DAMAGE_ODDS) * 2 + 1)
    assert a.random() == b.random()
    with pytest.raises(ValueError, match="single_share"):
        restraint_mix(rng, single_share=-0.1)


def test_pairs_are_a_function_of_the_step(photo):
    pairs = RestraintPairs([photo, photo.flip(-1)], seed=3)
    a, b = pairs.batch(7, 4, 32), pairs.batch(7, 4, 32)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    x_clean, x_damaged, mask = a
    assert x_clean.shape == x_damaged.shape == mask.shape == (4, 1, 32, 32)
    assert mask.dtype == torch.bool
    assert not torch.equal(pairs.batch(8, 4, 32)[0], x_clean)


def test_fixed_pairs_clean_photos_are_untouched(photo):
    x_clean, x_damaged, mask = fixed_pairs([photo] * 3, size=32, mix={})
    assert torch.equal(x_clean, x_damaged) and not mask.any()


def test_schedule_warms_up_decays_and_grows_the_crop():
    s = Schedule(total_steps=1000, warmup=100, final_share=0.2)
    lrs = [learning_rate(1e-3, s, step) for step in range(1000)]
    assert lrs[0] == pytest.approx(1e-5) and max(lrs) == pytest.approx(1e-3, rel=1e-3)
    assert lrs[-1] < 1e-6 and all(a >= b for a, b in zip(lrs[100:], lrs[101:]))
    assert crop_at(s, 0, 8) == (128, 8) and crop_at(s, 999, 8) == (256, 2)
    with pytest.raises(ValueError):
        Schedule(total_steps=0)


def test_mask_scores():
    truth = torch.tensor([[1, 1, 0, 0]], dtype=torch.bool)
    assert mask_scores(truth, truth)["f1"] == 1.0
    scores = mask_scores(torch.tensor([[1, 0, 1, 0]], dtype=torch.bool), truth)
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5 and scores["iou"] == 1 / 3


def test_training_runs_resumes_and_releases(tmp_path):
    from repair.cli import main

    out = tmp_path / "run"
    args = ["train", "--recipe", "restorer", "--profile", "tiny", "--out", str(out),
            "--val-every", "2", "--quiet"]
    args += ["--keep-epochs", "--decoy-share", "0.5", "--clean-share", "0.3",
             "--mask-pos-weight", "1.5", "--min-side", "64"]
    assert main([*args, "--max-steps", "2"]) == 0
    assert main([*args, "--max-steps", "4", "--resume"]) == 0
    state = read_checkpoint(out / "last.pt")
    assert state["global_step"] == 4 and state["settings"]["total_steps"] == 4
    assert state["settings"]["decoy_share"] == 0.5 and state["settings"]["clean_share"] == 0.3
    assert state["recipe"]["mask_pos_weight"] == 1.5   # the recipe with the change, resumable
    assert state["settings"]["min_side"] == 64
    assert read_checkpoint(out / "epoch_01.pt")["global_step"] == 2   # every round kept
    assert read_checkpoint(out / "epoch_02.pt")["global_step"] == 4
    net = load_generator(out / "G_best.pt")
    assert isinstance(net, MaskedNAFRestorer)
    x_clean, x_damaged, mask = fixed_pairs([torch.zeros(1, 32, 32)] * 2, size=32)
    logs = validate_restorer(net, x_clean, x_damaged, mask)
    assert {"val_psnr", "val_mask_f1", "val_mask_iou"} <= set(logs)


def test_mask_quality_scores_each_finder_against_the_truth(photo):
    from repair.masks import classical_finder, mask_quality, network_finder

    sets = [torch.stack([photo, photo.flip(-1)]), photo[None]]
    truth_finder = {"all": lambda x: torch.ones_like(x, dtype=torch.bool),
                    "classical": classical_finder, "head": network_finder(small())}
    scores = mask_quality(sets, truth_finder, seed=0)
    share = scores["all"]["damaged_share"]
    assert 0 < share < 1 and scores["all"]["recall"] == 1.0
    assert scores["all"]["precision"] == pytest.approx(share)
    assert set(scores["head"]) == set(scores["classical"]) and 0 <= scores["head"]["f1"] <= 1
    with pytest.raises(ValueError, match="no damage-mask head"):
        network_finder(torch.nn.Identity())


def test_rebuilt_from_its_hparams_like_every_generator():
    net = small()
    clone = build_generator(net.arch, **net.hparams)
    assert clone.hparams == net.hparams
    clone.load_state_dict(net.state_dict())


def test_min_side_keeps_only_photos_that_need_no_enlarging_and_never_moves_the_split(tmp_path):
    from conftest import save_png
    from repair.synth import training_photos
    from repair.validation import validation_photos

    rng = np.random.default_rng(0)
    for i in range(30):   # shorter sides 40..69 px
        save_png(tmp_path / f"p{i:02d}.png", rng.integers(0, 256, (40 + i, 80), dtype=np.uint8))
    train, val = training_photos(tmp_path)
    big_train, big_val = training_photos(tmp_path, min_side=55)
    assert big_train == [p for p in train if int(p.stem[1:]) >= 15]   # 40 + 15 = 55 px
    assert big_val == [p for p in val if int(p.stem[1:]) >= 15]
    assert len(validation_photos(tmp_path, size=32, min_side=55)) == len(big_val)
    with pytest.raises(FileNotFoundError, match="--min-side"):
        training_photos(tmp_path, min_side=500)
