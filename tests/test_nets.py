"""Tests for repair.nets: the paper's tables row by row, the fix networks, the shared interface."""

import pytest
import torch

from repair import anatomy, blocks, nets

# The paper's Fig. 4 (generator) and Fig. 3 (discriminator), copied from the paper's text.
PAPER_FIG4 = """
ConvTranspose2d-1	[-1, 256, 259, 259]	4,096
BatchNorm2d-2	[-1, 256, 259, 259]	512
ReLU-3	[-1, 256, 259, 259]	0
ConvTranspose2d-4	[-1, 128, 518, 518]	524,288
BatchNorm2d-5	[-1, 128, 518, 518]	256
ReLU-6	[-1, 128, 518, 518]	0
ConvTranspose2d-7	[-1, 64, 1036, 1036]	131,072
BatchNorm2d-8	[-1, 64, 1036, 1036]	128
ReLU-9	[-1, 64, 1036, 1036]	0
MaxPool2d-10	[-1, 64, 259, 259]	0
ConvTranspose2d-11	[-1, 32, 260, 260]	32,768
BatchNorm2d-12	[-1, 32, 260, 260]	64
ReLU-13	[-1, 32, 260, 260]	0
MaxPool2d-14	[-1, 32, 257, 257]	0
ConvTranspose2d-15	[-1, 1, 256, 256]	512
Tanh-16	[-1, 1, 256, 256]	0
"""

PAPER_FIG3 = """
Conv2d-1	[-1, 32, 128, 128]	512
LeakyReLU-2	[-1, 32, 128, 128]	0
Conv2d-3	[-1, 64, 64, 64]	32,768
BatchNorm2d-4	[-1, 64, 64, 64]	128
LeakyReLU-5	[-1, 64, 64, 64]	0
Conv2d-6	[-1, 128, 32, 32]	131,072
BatchNorm2d-7	[-1, 128, 32, 32]	256
LeakyReLU-8	[-1, 128, 32, 32]	0
Conv2d-9	[-1, 256, 16, 16]	524,288
BatchNorm2d-10	[-1, 256, 16, 16]	512
LeakyReLU-11	[-1, 256, 16, 16]	0
MaxPool2d-12	[-1, 256, 4, 4]	0
Conv2d-13	[-1, 256, 2, 2]	1,048,576
BatchNorm2d-14	[-1, 256, 2, 2]	512
LeakyReLU-15	[-1, 256, 2, 2]	0
Flatten-16	[-1, 1024]	0
Linear-17	[-1, 100]	102,500
ReLU-18	[-1, 100]	0
Linear-19	[-1, 100]	10,100
ReLU-20	[-1, 100]	0
Linear-21	[-1, 2]	202
Softmax-22	[-1, 2]	0
"""


def parse_rows(text):
    rows = []
    for line in text.strip().splitlines():
        name, shape, params = line.split("\t")
        rows.append((name, [int(s) for s in shape.strip("[]").split(",")], int(params.replace(",", ""))))
    return rows


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def small_generators():
    return [nets.PaperGenerator(ngf=4), nets.UNetGenerator(ngf=4, depth=2),
            nets.UNetGenerator(ngf=4, depth=2, upsample="transpose", norm="instance"),
            nets.UNetGenerator(ngf=4, depth=2, norm="none", residual=False)]


def small_discriminators(size=32):
    return [nets.PaperDiscriminator(ndf=4, image_size=size),
            nets.PaperDiscriminator(ndf=4, image_size=size, head="logit"),
            nets.PatchDiscriminator(ndf=4), nets.PatchDiscriminator(ndf=4, norm="instance")]


# ---------------------------------------------------------------- the paper's tables


def test_paper_generator_matches_fig4_row_by_row():
    assert anatomy.paper_table(nets.PaperGenerator(), 256) == parse_rows(PAPER_FIG4)


def test_paper_discriminator_matches_fig3_row_by_row():
    assert anatomy.paper_table(nets.PaperDiscriminator(), 256) == parse_rows(PAPER_FIG3)


def test_paper_parameter_totals():
    assert n_params(nets.PaperGenerator()) == 693_696
    assert n_params(nets.PaperDiscriminator()) == 1_851_426
    assert n_params(nets.PaperDiscriminator(head="logit")) == 1_851_426 - 101  # Linear(100, 1)


def test_paper_table_agrees_with_a_real_forward_at_small_size():
    net_G = nets.PaperGenerator(ngf=4)
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append([-1, *o.shape[1:]]))
             for m in net_G.main]
    net_G(torch.zeros(2, 1, 24, 24))
    for h in hooks:
        h.remove()
    assert [row[1] for row in anatomy.paper_table(net_G, 24)] == shapes
    assert shapes[6] == [-1, 8, 108, 108] and shapes[-1] == [-1, 1, 24, 24]  # 4x, then back


def test_format_layers_lists_every_row_and_the_total():
    text = anatomy.format_layers(anatomy.paper_table(nets.PaperGenerator()))
    assert "ConvTranspose2d-15" in text and "[-1, 64, 1036, 1036]" in text
    assert text.splitlines()[-1].split()[-1] == "693,696"


def test_summary_is_torchinfo_and_leaves_the_net_alone():
    net_G = nets.PaperGenerator()
    stats = anatomy.summary(net_G, 256)
    assert type(stats).__name__ == "ModelStatistics"
    assert stats.total_params == 693_696
    assert next(net_G.parameters()).device.type == "cpu"


def test_summary_refuses_another_size_for_a_size_bound_net():
    with pytest.raises(ValueError, match="image_size=64"):
        anatomy.summary(nets.PaperDiscriminator(image_size=256), 64)


# ---------------------------------------------------------------- initialisation


def test_init_weights_follow_the_paper():
    torch.manual_seed(0)
    net_D = nets.PaperDiscriminator()
    w = net_D.features[12].weight                 # Conv2d 256 -> 256, 1,048,576 weights
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    norm = net_D.features[9]                      # BatchNorm2d(256)
    assert abs(norm.weight.mean().item() - 1) < 0.01 and 0.01 < norm.weight.std().item() < 0.03
    assert torch.all(norm.bias == 0)
    linear = net_D.classifier[0]
    assert abs(linear.weight.std().item() - 0.02) < 2e-3 and torch.all(linear.bias == 0)


def test_init_weights_std_argument():
    net = blocks.init_weights(nets.PatchDiscriminator(ndf=16), std=0.1)
    assert abs(net.main[2].weight.std().item() - 0.1) < 0.01


# ---------------------------------------------------------------- the generators


@pytest.mark.parametrize("net_G", small_generators(), ids=lambda n: f"{n.arch}-{n.hparams}")
def test_generators_keep_shape_and_range(net_G):
    torch.manual_seed(1)
    x_damaged = torch.cat([torch.rand(2, 1, 16, 32) * 2 - 1, torch.full((1, 1, 16, 32), 1.0)])
    x_restored = net_G(x_damaged)
    assert x_restored.shape == x_damaged.shape
    assert x_restored.min() >= -1 and x_restored.max() <= 1
    x_restored.mean().backward()
    assert all(p.grad is not None for p in net_G.parameters())


@pytest.mark.parametrize("size", [(16, 16), (32, 48), (64, 64)])
def test_unet_shapes_at_several_sizes(size):
    net_G = nets.UNetGenerator(ngf=4, depth=4)
    assert net_G(torch.zeros(2, 1, *size)).shape == (2, 1, *size)


def test_unet_rejects_sizes_it_cannot_halve_and_names_sizes_that_work():
    with pytest.raises(ValueError, match=r"divisible by 16.*48 or 64"):
        nets.UNetGenerator(ngf=4, depth=4)(torch.zeros(1, 1, 50, 50))


def test_unet_starts_close_to_its_input():
    torch.manual_seed(0)
    x_damaged = torch.rand(2, 1, 32, 32) * 2 - 1
    x_restored = nets.UNetGenerator(ngf=8, depth=3)(x_damaged)
    assert (x_restored - x_damaged).abs().mean() < 0.2


def test_unet_default_size():
    assert 7_000_000 < n_params(nets.UNetGenerator()) < 7_500_000


def test_bounded_residual():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert torch.equal(blocks.bounded_residual(x, torch.zeros(5)), x)
    for d in (-50.0, -1.0, 1.0, 50.0):
        y = blocks.bounded_residual(x, torch.full((5,), d))
        assert y.min() >= -1 and y.max() <= 1
    delta = torch.zeros(1, requires_grad=True)      # a white pixel can still be pulled down
    blocks.bounded_residual(torch.ones(1), delta - 1e-3).sum().backward()
    assert delta.grad.item() > 1


def test_generators_reject_colour_or_unbatched_input():
    for net_G in small_generators()[:2]:
        with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
            net_G(torch.zeros(1, 3, 16, 16))
        with pytest.raises(ValueError, match="unsqueeze"):
            net_G(torch.zeros(1, 16, 16))


# ---------------------------------------------------------------- the discriminators


@pytest.mark.parametrize("net_D", small_discriminators(), ids=lambda n: f"{n.arch}-{n.hparams}")
def test_discriminators_share_one_interface(net_D):
    x_damaged, x_candidate = torch.rand(2, 3, 1, 32, 32) * 2 - 1
    out = net_D(x_damaged, x_candidate)
    assert out.shape[0] == 3
    assert isinstance(net_D.returns_logits, bool)


def test_paper_discriminator_heads():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 64, 64) * 2 - 1
    probs = nets.PaperDiscriminator(ndf=8, image_size=64)(None, x)
    assert probs.shape == (4, 2) and torch.allclose(probs.sum(1), torch.ones(4))
    logits = nets.PaperDiscriminator(ndf=8, image_size=64, head="logit")(None, x)
    assert logits.shape == (4, 1)


def test_paper_discriminator_is_unconditional():
    torch.manual_seed(0)
    net_D = nets.PaperDiscriminator(ndf=4, image_size=32).eval()
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(net_D(None, x), net_D(torch.rand(2, 1, 32, 32), x))


@pytest.mark.parametrize("size, n_features", [(32, 256), (64, 1024), (128, 1024)])
def test_paper_discriminator_sizes(size, n_features):
    net_D = nets.PaperDiscriminator(image_size=size)
    assert net_D.classifier[0].in_features == n_features
    assert net_D(None, torch.zeros(2, 1, size, size)).shape == (2, 2)


def test_paper_discriminator_errors():
    with pytest.raises(ValueError, match="multiple of 16"):
        nets.PaperDiscriminator(image_size=40)
    with pytest.raises(ValueError, match="'softmax'.*'logit'"):
        nets.PaperDiscriminator(head="sigmoid")
    with pytest.raises(ValueError, match="built for 64x64.*image_size=32"):
        nets.PaperDiscriminator(ndf=4, image_size=64)(None, torch.zeros(1, 1, 32, 32))


def test_patch_discriminator_is_a_70px_patchgan_with_a_30x30_map_at_256():
    net_D = nets.PatchDiscriminator(ndf=4)
    assert net_D.main[0].in_channels == 2          # damaged + candidate
    x = torch.zeros(1, 1, 256, 256)
    assert net_D(x, x).shape == (1, 1, 30, 30)
    expected = (2 * 64 * 16 + 64) + (64 * 128 * 16 + 256) + (128 * 256 * 16 + 512) \
        + (256 * 512 * 16 + 1024) + (512 * 16 + 1)  # conv + bias / BatchNorm per layer
    assert n_params(nets.PatchDiscriminator()) == expected == 2_764_609


def test_patch_discriminator_sees_the_damaged_input():
    torch.manual_seed(0)
    net_D = nets.PatchDiscriminator(ndf=4).eval()
    x = torch.rand(1, 1, 32, 32)
    assert not torch.equal(net_D(x, x), net_D(torch.rand(1, 1, 32, 32), x))


def test_patch_discriminator_errors():
    with pytest.raises(ValueError, match="same shape"):
        nets.PatchDiscriminator(ndf=4)(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="at least 24 pixels"):
        nets.PatchDiscriminator(ndf=4)(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))


# ---------------------------------------------------------------- registry


def test_every_network_names_its_architecture_and_hyperparameters():
    assert set(nets.GENERATORS) == {"paper-generator", "unet", "nafnet"}
    assert set(nets.DISCRIMINATORS) == {"paper-discriminator", "patch"}
    for net in small_generators() + small_discriminators():
        assert isinstance(net.arch, str) and isinstance(net.hparams, dict)


@pytest.mark.parametrize("net", small_generators() + small_discriminators(),
                         ids=lambda n: f"{n.arch}-{n.hparams}")
def test_build_round_trip(net):
    build = nets.build_generator if net.arch in nets.GENERATORS else nets.build_discriminator
    clone = build(net.arch, **net.hparams)
    assert type(clone) is type(net) and clone.hparams == net.hparams
    clone.load_state_dict(net.state_dict())        # same layers, same shapes
    net.eval(), clone.eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    args = (x,) if net.arch in nets.GENERATORS else (x, x)
    assert torch.equal(net(*args), clone(*args))


def test_build_errors_are_clear():
    with pytest.raises(ValueError, match="choose one of paper-generator, unet"):
        nets.build_generator("resnet")
    with pytest.raises(ValueError, match="choose one of paper-discriminator, patch"):
        nets.build_discriminator("unet")
    with pytest.raises(ValueError, match="bad hyper-parameters for 'unet'"):
        nets.build_generator("unet", width=3)
