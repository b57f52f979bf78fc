"""The sharpening branch fitted in closed form (repair.sharpen_fit and its command line)."""

from __future__ import annotations

import pytest
import torch

from repair.checkpoint import load_generator, read_checkpoint, release_from, save_checkpoint
from repair.nafnet import MaskedNAFRestorer, _gaussian_blur
from repair.sharpen_fit import best_amounts, fit_sharpen_head, with_sharpen_head
from repair.sharpen_fit_cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def small(**kw):
    return MaskedNAFRestorer(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1),
                             mask_width=4, **kw)


def textures(n, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 32, 32, generator=g) - 0.5) * 0.8


def test_best_amount_undoes_an_unsharp_mask_exactly():
    x = textures(3, 0)
    soft = _gaussian_blur(x, 1.0)
    amounts = best_amounts(soft, x)
    assert (amounts > 0).all()                           # the soft photos want sharpening
    assert torch.allclose(best_amounts(x, x), torch.zeros(3), atol=1e-6)   # the sharp ones not


def test_fit_learns_to_sharpen_blurred_photos_and_leave_sharp_ones_alone():
    torch.manual_seed(0)
    net = with_sharpen_head(small(), deadzone=0.0)
    batches = []
    for seed in range(12):
        x = textures(8, seed)
        blurred = _gaussian_blur(x, 1.2)
        batches.append((torch.cat([x, x]), torch.cat([x, blurred])))  # half sharp, half blurred
    figures = fit_sharpen_head(net, batches, ridge=1.0)
    assert figures["pairs"] == 192 and figures["r2"] > 0.5
    x = textures(8, 99)
    caught = {}
    net.sharpen.register_forward_hook(lambda m, i, o: caught.__setitem__("a", o[:, 0].clone()))
    with torch.no_grad():
        sharp_out, sharp_amounts = net(x), caught["a"]
        blurred_out, blurred_amounts = net(_gaussian_blur(x, 1.2)), caught["a"]
    assert blurred_amounts.mean() > sharp_amounts.mean() + 0.05
    before = (_gaussian_blur(x, 1.2) - x).abs().mean()
    assert (blurred_out - x).abs().mean() < before       # sharper than it came in
    assert (sharp_out - x).abs().mean() < 0.25 * before  # and the sharp photos nearly untouched


def test_deadzone_leaves_small_amounts_alone():
    net = with_sharpen_head(small(), deadzone=0.5)
    x = textures(2, 1)
    with torch.no_grad():
        net.sharpen.bias[0] = 0.4 / net.SHARPEN_SCALE     # inside the dead zone: no change
        assert torch.equal(net(x), x)
        net.sharpen.bias[0] = 1.5 / net.SHARPEN_SCALE     # outside: 1.5 - 0.5 = 1
        want = (x + (x - _gaussian_blur(x, 1.0))).clamp(-1, 1)
        assert torch.allclose(net(x), want, atol=1e-5)
    assert net.hparams["sharpen_deadzone"] == 0.5
    with pytest.raises(ValueError, match="sharpen_deadzone"):
        small(sharpen_branch=True, sharpen_deadzone=-1)


@pytest.fixture
def restorer_checkpoint(tmp_path):
    net = small()
    path = tmp_path / "restorer.pt"
    from repair.checkpoint import net_record
    save_checkpoint(path, release_from({"generator": net_record(net)}, half=True))
    return path


def test_command_line_writes_the_init_network_with_a_fitted_branch(tmp_path, photo_folder,
                                                                   restorer_checkpoint):
    out = tmp_path / "sharpened.pt"
    args = ["--init", str(restorer_checkpoint), "--out", str(out), "--data", str(photo_folder),
            "--pairs", "12", "--batch-size", "4", "--size", "32", "--quiet"]
    assert main(args) == 0
    fitted, source = load_generator(out), load_generator(restorer_checkpoint)
    assert fitted.hparams["sharpen_deadzone"] == 0.4
    mine = fitted.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in source.state_dict().items())
    assert read_checkpoint(out)["sharpen_fit"]["pairs"] == 12
    assert main(args) == 2                                   # never overwrites by surprise
    assert main([*args, "--overwrite"]) == 0


@pytest.mark.parametrize("change, message", [
    ({"--init": "{tmp}/missing.pt"}, "no such checkpoint"),
    ({"--pairs": "0"}, "--pairs"),
    ({"--deadzone": "-1"}, "--deadzone"),
    ({"--out": "{init}"}, "must not be --init"),
])
def test_command_line_rejects_bad_options(tmp_path, restorer_checkpoint, capsys, change, message):
    args = {"--init": str(restorer_checkpoint), "--out": str(tmp_path / "o.pt")}
    args.update({k: v.format(tmp=tmp_path, init=restorer_checkpoint) for k, v in change.items()})
    assert main([*sum(args.items(), ()), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()
