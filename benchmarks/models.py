"""Side-by-side cost of every generator and discriminator: parameters, GFLOPs, memory, CPU speed.

GFLOPs and memory are counted per 256x256 image on the meta device (no compute, exact for what
they count: see repair.probe.flops and peak_memory). Times are measured on this CPU with one
thread at --image-size: inference is one image in eval mode without gradients; a training step
is, for a generator, one full pix2pix-style step (D on real and fake, then G with L1 + adversarial
loss, both with Adam) with its partner discriminator (the restorer of record: its own L1 + mask
step with AdamW, no discriminator), and for a discriminator its own step alone.

    python benchmarks/models.py                       # about two minutes at 128x128
    python benchmarks/models.py --image-size 256 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from repair import nets, probe

# name -> (builder, partner name for the generator's training step)
NETWORKS = {
    "paper-generator": (lambda size: nets.PaperGenerator(ngf=32), "paper-D (logit)"),
    "unet": (lambda size: nets.UNetGenerator(ngf=32, depth=4), "patch"),
    "unet (transpose)": (lambda size: nets.UNetGenerator(ngf=32, depth=4, upsample="transpose"),
                         "patch"),
    "restorer w8": (lambda size: nets.MaskedNAFRestorer(width=8, mask_width=4), None),
    "restorer w16": (lambda size: nets.MaskedNAFRestorer(width=16, mask_width=8), None),
    "restorer w24": (lambda size: nets.MaskedNAFRestorer(width=24, mask_width=8), None),
    "paper-D (softmax)": (lambda size: nets.PaperDiscriminator(ndf=32, image_size=size), None),
    "paper-D (logit)": (lambda size: nets.PaperDiscriminator(ndf=32, image_size=size,
                                                             head="logit"), None),
    "patch": (lambda size: nets.PatchDiscriminator(ndf=64, n_layers=3), None),
}


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def d_logits(net_D, x_damaged, x):
    """A discriminator's output as logits for BCE-with-logits (the softmax head: its P(real) column,
    passed on as the paper did)."""
    out = net_D(x_damaged, x)
    return out if net_D.returns_logits else out[:, nets.REAL:nets.REAL + 1]


def d_step(net_D, opt_D, x_damaged, x_clean, x_fake):
    """One discriminator update on a real and a fake batch."""
    opt_D.zero_grad(set_to_none=True)
    real, fake = d_logits(net_D, x_damaged, x_clean), d_logits(net_D, x_damaged, x_fake)
    loss_D = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                    + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    loss_D.backward()
    opt_D.step()


def gan_step(net_G, net_D, opt_G, opt_D, x_damaged, x_clean):
    """One pix2pix-style step: D on real and fake, then G with L1 (x100) + adversarial loss."""
    x_restored = net_G(x_damaged)
    d_step(net_D, opt_D, x_damaged, x_clean, x_restored.detach())
    opt_G.zero_grad(set_to_none=True)
    fake = d_logits(net_D, x_damaged, x_restored)
    loss_G = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)) \
        + 100 * F.l1_loss(x_restored, x_clean)
    loss_G.backward()
    opt_G.step()


def l1_step(net_G, opt_G, x_damaged, x_clean):
    """One step of a generator trained without a discriminator (the restorer: L1 + mask BCE)."""
    opt_G.zero_grad(set_to_none=True)
    x_restored, logits = net_G(x_damaged, with_mask=True)
    loss_G = F.l1_loss(x_restored, x_clean) + 0.1 * F.binary_cross_entropy_with_logits(
        logits, (x_clean > 0).float())
    loss_G.backward()
    opt_G.step()


def measure(name: str, size: int, batch_size: int, repeats: int) -> dict:
    build, partner = NETWORKS[name]
    net = build(size)
    is_generator = net.arch in nets.GENERATORS
    at256 = build(256)                             # the paper discriminator is built per size
    cost, memory = probe.flops(at256, 256), probe.peak_memory(at256, 256)
    x_damaged = torch.rand(batch_size, 1, size, size) * 2 - 1
    x_clean = torch.rand(batch_size, 1, size, size) * 2 - 1

    net.eval()
    one = x_damaged[:1]
    with torch.no_grad():
        infer = timed(lambda: net(one) if is_generator else net(one, one), repeats)
    net.train()
    if is_generator and partner is None:
        opt_G = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.9))
        step = timed(lambda: l1_step(net, opt_G, x_damaged, x_clean), repeats)
    elif is_generator:
        net_D = NETWORKS[partner][0](size)
        opt_G = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_D = torch.optim.Adam(net_D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        step = timed(lambda: gan_step(net, net_D, opt_G, opt_D, x_damaged, x_clean), repeats)
    else:
        opt_D = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
        step = timed(lambda: d_step(net, opt_D, x_damaged, x_clean, x_damaged), repeats)
    return {
        "network": name, "params": sum(p.numel() for p in at256.parameters()),
        "gflop": cost["forward"] / 1e9, "gflop_train": cost["forward_backward"] / 1e9,
        "train_mb": memory["training"] / 2**20, "infer_ms": 1000 * infer,
        "train_ips": batch_size / step,
        "step": f"+ {partner}" if partner else "L1 + mask" if is_generator else "D alone",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=128,
                        help="side of the images timed (default 128; GFLOPs/memory are at 256)")
    parser.add_argument("--batch-size", type=int, default=2, help="training batch (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, median (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--only", nargs="*", choices=list(NETWORKS), help="measure only these")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"torch {torch.__version__}, {args.threads} thread(s); times at {args.image_size}x"
          f"{args.image_size}, training batch {args.batch_size}, median of {args.repeats}")
    header = (f"{'network':<18} {'params':>10} {'GFLOP/img':>10} {'GFLOP train':>12} "
              f"{'train MB':>9} {'infer ms':>9} {'train img/s':>12}  training step")
    print(header)
    print(f"{'':<18} {'':>10} {'(256², fwd)':>10} {'(256², f+b)':>12} {'(256², b1)':>9} "
          f"{'(1 img)':>9} {'':>12}")
    print("-" * len(header))
    for name in args.only or NETWORKS:
        r = measure(name, args.image_size, args.batch_size, args.repeats)
        print(f"{r['network']:<18} {r['params']:>10,} {r['gflop']:>10.2f} {r['gflop_train']:>12.2f} "
              f"{r['train_mb']:>9.0f} {r['infer_ms']:>9.1f} {r['train_ips']:>12.2f}  {r['step']}",
              flush=True)


if __name__ == "__main__":
    main()
