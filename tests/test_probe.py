"""Tests for repair.probe: the measurements behind chapter 02's claims give the known facts."""

import math

import pytest
import torch

from repair import anatomy, nets, probe


@pytest.fixture(scope="module")
def analysis():
    return probe.softmax_bce_analysis()


# ---------------------------------------------------------------- softmax head + BCE-with-logits


def test_softmax_probability_as_logit_pins_D_between_half_and_0731(analysis):
    low, high = analysis["implied_D_range"]
    assert 0.5 <= low < 0.5001
    assert 0.7310 < high <= 1 / (1 + math.exp(-1))


def test_softmax_head_gradient_vanishes_when_D_is_confidently_wrong(analysis):
    softmax, logit = analysis["grad_confidently_wrong"]
    assert abs(softmax) < 1e-4
    assert logit == pytest.approx(-1, abs=1e-3)
    assert analysis["max_abs_grad_softmax"] <= 0.125  # (1 - sigmoid(p)) * p(1-p) <= 1/2 * 1/4
    assert torch.all(analysis["grad_softmax"].abs() <= analysis["grad_logit"].abs())


def test_one_unit_softmax_gives_a_constant_loss_and_no_gradient(analysis):
    one = analysis["one_unit"]
    assert one["loss_real"] == pytest.approx(math.log1p(math.exp(-1)), abs=1e-6)  # 0.313
    assert one["loss_fake"] == pytest.approx(math.log1p(math.exp(1)), abs=1e-6)   # 1.313
    assert one["grad_abs_max"] == 0


def test_same_target_on_both_columns_is_minimised_by_an_undecided_D(analysis):
    assert analysis["two_column_argmin"] == pytest.approx((0.5, 0.5), abs=0.01)


def test_implicit_softmax_dim():
    facts = probe.softmax_batch_coupling()
    assert facts["implicit_dim_2d"] == 1 and facts["coupling_2d"] == 0
    assert facts["implicit_dim_1d"] == 0 and facts["coupling_1d"] > 0.01


@pytest.fixture(scope="module")
def small_pair():
    torch.manual_seed(0)
    net_G = nets.PaperGenerator(ngf=4)
    net_D = nets.PaperDiscriminator(ndf=4, image_size=32)
    x_damaged = torch.rand(2, 1, 32, 32) * 2 - 1
    return net_G, net_D, x_damaged


def test_logit_twin_makes_the_same_decisions(small_pair):
    _, net_D, x = small_pair
    twin = probe.logit_twin(net_D)
    assert twin.returns_logits and twin.hparams["head"] == "logit"
    assert torch.allclose(torch.sigmoid(twin(None, x))[:, 0], net_D(None, x)[:, nets.REAL],
                          atol=1e-6)
    with pytest.raises(ValueError, match="head='softmax'"):
        probe.logit_twin(twin)


def test_logit_head_gradient_survives_where_softmax_head_gradient_vanishes(small_pair):
    net_G, net_D, x = small_pair
    sweep = probe.head_gradient_sweep(net_G, net_D, x, shifts=(-12, 0))
    assert sweep["D_real"][0] < 1e-3                        # D sure the fakes are fake
    assert sweep["logit"][0] > 0.5 * max(sweep["logit"])    # the logit head still pushes G
    assert sweep["softmax"][0] < 1e-3 * sweep["logit"][0]   # the softmax head does not
    assert sweep["softmax"][1] < sweep["logit"][1]          # weaker even when D is undecided


def test_generator_gradient_norm_with_a_patch_discriminator():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    norm = probe.generator_gradient_norm(nets.UNetGenerator(ngf=4, depth=2),
                                         nets.PatchDiscriminator(ndf=4), x)
    assert norm > 0 and math.isfinite(norm)


# ---------------------------------------------------------------- receptive field


def test_patchgan_sees_70x70_pixels():
    rf = anatomy.receptive_field(nets.PatchDiscriminator(ndf=4), 96)
    assert rf["extent"] == (70, 70) and not rf["clipped"]


def test_paper_generator_sees_15x15_pixels_and_unet_much_more():
    paper = anatomy.receptive_field(nets.PaperGenerator(ngf=4), 48)
    assert paper["extent"] == (15, 15) and not paper["clipped"]
    unet = anatomy.receptive_field(nets.UNetGenerator(ngf=4, depth=3), 48)
    assert unet["extent"][0] > 40 and unet["effective"] > paper["effective"]


def test_impulse_response_is_zero_outside_the_receptive_field():
    grad = anatomy.impulse_response(nets.PaperGenerator(ngf=4), 48)
    assert grad.shape == (48, 48)
    assert grad[24 - 7:24 + 8, 24 - 7:24 + 8].sum() > 0
    outside = grad.clone()
    outside[24 - 7:24 + 8, 24 - 7:24 + 8] = 0
    assert outside.sum() == 0


def test_probes_leave_the_network_untouched():
    net_G = nets.UNetGenerator(ngf=4, depth=2).train()
    before = {k: v.clone() for k, v in net_G.state_dict().items()}
    rng = torch.get_rng_state()
    anatomy.receptive_field(net_G, 32)
    probe.checkerboard_score(net_G, 32)
    assert net_G.training and torch.equal(rng, torch.get_rng_state())  # no global RNG drawn
    assert all(torch.equal(before[k], v) for k, v in net_G.state_dict().items())


# ---------------------------------------------------------------- cost


def test_flops_of_the_paper_generator_at_256():
    counted = anatomy.flops(nets.PaperGenerator(), 256)
    assert counted["forward"] == pytest.approx(145.68e9, rel=1e-3)
    assert 2.5 < counted["forward_backward"] / counted["forward"] < 3.1


def test_flops_of_the_unet_scale_with_pixels_and_batch():
    net_G = nets.UNetGenerator()
    at256 = anatomy.flops(net_G, 256)["forward"]
    assert at256 == pytest.approx(23.3e9, rel=0.01)
    assert anatomy.flops(net_G, 128)["forward"] == pytest.approx(at256 / 4, rel=1e-6)
    assert anatomy.flops(net_G, 64, batch_size=3)["forward"] == pytest.approx(3 * at256 / 16, rel=1e-6)


def test_flops_of_discriminators_use_their_own_size():
    assert anatomy.flops(nets.PaperDiscriminator())["forward"] > 0
    assert anatomy.flops(nets.PatchDiscriminator(), 256)["forward"] == pytest.approx(6.26e9, rel=0.01)


def test_peak_memory_counts_the_paper_generators_huge_activation():
    mem = anatomy.peak_memory(nets.PaperGenerator(), 256)
    assert mem["largest_activation"] == 64 * 1036 * 1036 * 4
    assert mem["parameters"] == 693_696 * 4
    assert mem["saved"] > 2 * mem["largest_activation"]
    assert mem["training"] == 4 * mem["parameters"] + mem["saved"] + 256 * 256 * 4
    twice = anatomy.peak_memory(nets.PaperGenerator(), 256, batch_size=2)
    assert twice["saved"] == pytest.approx(2 * mem["saved"], rel=1e-4)  # BatchNorm's stats: once
    assert mem["saved"] > 5 * anatomy.peak_memory(nets.UNetGenerator(), 256)["saved"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_peak_memory_measured_on_cuda_is_at_least_the_count():
    mem = anatomy.peak_memory(nets.UNetGenerator(ngf=16, depth=3), 128, 4, device="cuda")
    assert mem["measured_peak"] >= mem["saved"]


# ---------------------------------------------------------------- checkerboards


def test_nyquist_fraction():
    i, j = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    assert probe.nyquist_fraction(((i + j) % 2).float()) == pytest.approx(1.0)
    assert probe.nyquist_fraction(torch.ones(32, 32)) == 0.0
    assert probe.nyquist_fraction(torch.sin(i / 5.0) + torch.cos(j / 7.0)) < 0.01


def test_transposed_convolutions_leave_a_checkerboard_and_bilinear_does_not():
    torch.manual_seed(0)
    transpose = probe.checkerboard_score(nets.UNetGenerator(ngf=8, depth=2, upsample="transpose"), 48)
    bilinear = probe.checkerboard_score(nets.UNetGenerator(ngf=8, depth=2), 48)
    assert transpose > 0.3 and bilinear < 0.05


def test_checkerboard_map_of_a_discriminator_is_its_input_gradient():
    grad = probe.checkerboard_map(nets.PatchDiscriminator(ndf=4), 48)
    assert grad.shape == (48, 48) and grad.abs().sum() > 0
