import numpy as np
import pytest
import torch

from repair.config import get_config
from repair.data import (PairedDataset, check_images, fit_size, imagenette_files, make_datasets,
                         make_loader, skimage_photos, split_files)

from conftest import save_png
from fakes import fake_imagenette


def test_skimage_photos_need_no_files():
    photos = skimage_photos(["camera", "astronaut"])
    assert [p.shape[0] for p in photos] == [1, 1]
    assert all(p.min() >= -1 and p.max() <= 1 for p in photos)


def test_fit_size_crop_and_resize():
    x = torch.linspace(-1, 1, 40 * 60).reshape(1, 40, 60)
    assert fit_size(x, 32).shape == (1, 32, 32)
    assert torch.equal(fit_size(x, 32), x[:, 4:36, 14:46])  # centre crop, no resampling
    assert fit_size(x, 64).shape == (1, 64, 64)  # enlarged first
    assert fit_size(x, 16, mode="resize").shape == (1, 16, 16)
    a = fit_size(x, 16, np.random.default_rng(0))
    assert torch.equal(a, fit_size(x, 16, np.random.default_rng(0)))


def test_paired_dataset_train_changes_each_epoch_eval_fixed(photo):
    train = PairedDataset([photo] * 3, image_size=32, train=True)
    train.set_epoch(0)
    a = train[1]
    assert torch.equal(a[1], train[1][1])  # same epoch, same pair
    train.set_epoch(1)
    b = train[1]
    assert not torch.equal(a[1], b[1])
    val = PairedDataset([photo] * 3, image_size=32, train=False)
    val.set_epoch(5)
    assert torch.equal(val[0][1], PairedDataset([photo] * 3, 32, train=False)[0][1])
    assert not torch.equal(val[0][1], val[1][1])  # damage seeded by the index


def test_pair_shapes_and_mask_consistency(photo):
    ds = PairedDataset([photo], image_size=48, train=False,
                       damage_kwargs=dict(blur=0, splotches=0.7, cracks=0.7, contrast=0))
    x_clean, x_damaged, mask = ds[0]
    assert x_clean.shape == x_damaged.shape == mask.shape == (1, 48, 48)
    assert torch.equal(x_damaged[~mask], x_clean[~mask])


def test_split_files_fixed_and_disjoint():
    items = list(range(50))
    train, val = split_files(items, 0.1, seed=0)
    assert len(val) == 5 and not set(train) & set(val) and sorted(train + val) == items
    assert split_files(items, 0.1, seed=0) == (train, val)
    with pytest.raises(ValueError, match="at least 2"):
        split_files([1])


def test_folder_source_skips_bad_files(photo_folder, recwarn):
    (photo_folder / "broken.png").write_text("not an image")
    cfg = get_config("tiny").replace(source="folder", num_images=None)
    train, val = make_datasets(cfg, root=photo_folder)
    assert len(train) + len(val) == 5
    assert any("broken.png" in str(w.message) for w in recwarn)
    good, bad = check_images(sorted(photo_folder.rglob("*.png")))
    assert len(good) == 5 and len(bad) == 1 and "not an image" in bad[0]


def test_tiny_profile_needs_no_files():
    train, val = make_datasets(get_config("tiny"))
    x_clean, x_damaged, mask = train[0]
    assert x_clean.shape == (1, 32, 32) and len(train) == 4 and len(val) >= 1


def test_loader_with_workers_matches_single_process(photo):
    ds = PairedDataset([photo * (i / 5) for i in range(6)], image_size=32, train=True)
    ds.set_epoch(2)
    serial = [b[1] for b in make_loader(ds, 2, shuffle=True, num_workers=0, seed=3)]
    parallel = [b[1] for b in make_loader(ds, 2, shuffle=True, num_workers=2, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel)) and len(serial) == 3


def test_imagenette_layout_from_a_fake_folder(tmp_path):
    fake_imagenette(tmp_path, {"train": 3, "val": 2})
    files = imagenette_files(tmp_path, "train")
    assert len(files) == 6 and all(f.suffix == ".JPEG" for f in files)
    cfg = get_config("paper").replace(image_size=64, num_workers=0)
    train, val = make_datasets(cfg, root=tmp_path)
    assert len(train) == 6 and len(val) == 4
    x_clean, x_damaged, _ = val[0]
    assert x_clean.shape == (1, 64, 64)  # the whole photo resized, as the paper did


def test_imagenette_root_defaults_to_the_environment(tmp_path, monkeypatch):
    fake_imagenette(tmp_path, {"train": 2, "val": 1})
    monkeypatch.setenv("REPAIR_IMAGENETTE", str(tmp_path))
    train, val = make_datasets(get_config("paper").replace(image_size=32, num_workers=0))
    assert len(train) == 4 and len(val) == 2
    monkeypatch.setenv("REPAIR_IMAGENETTE", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        make_datasets(get_config("paper"))


def test_imagenette_missing_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        imagenette_files(tmp_path, "train")


def test_bad_dataset_arguments(photo):
    with pytest.raises(ValueError, match="mode"):
        PairedDataset([photo], 32, train=True, mode="stretch")
    with pytest.raises(ValueError, match="no photos"):
        PairedDataset([], 32, train=True)
    with pytest.raises(ValueError, match="unknown data source"):
        make_datasets(get_config("tiny").replace(source="flickr"))


def test_random_rescale_shrinks_within_range_never_below_the_crop():
    from repair.data import random_rescale

    x = torch.rand(1, 200, 300) * 2 - 1
    for seed in range(20):
        y = random_rescale(x, 64, (0.5, 1.0), np.random.default_rng(seed))
        assert 100 <= y.shape[1] <= 200 and min(y.shape[1:]) >= 64
        assert y.shape[2] / y.shape[1] == pytest.approx(1.5, rel=0.02)     # aspect kept
    small = torch.zeros(1, 70, 90)
    assert min(random_rescale(small, 64, (0.5, 0.5), np.random.default_rng(0)).shape[1:]) == 64
    assert random_rescale(small, 80, (0.5, 1.0), np.random.default_rng(0)) is small  # too small


def test_scale_and_jitter_vary_training_pairs_only_and_reproducibly(photo):
    plain = PairedDataset([photo] * 8, 32, train=True)
    varied = PairedDataset([photo] * 8, 32, train=True, scale=(0.5, 1.0), jitter=True)
    again = PairedDataset([photo] * 8, 32, train=True, scale=(0.5, 1.0), jitter=True)
    assert all(torch.equal(varied[i][1], again[i][1]) for i in range(8))    # seeded
    assert any(not torch.equal(varied[i][0], plain[i][0]) for i in range(8))  # rescaled crops
    # splotches and cracks are both off in 1 pair of 16: then nothing is painted over
    many = PairedDataset([photo] * 64, 16, train=True, jitter=True)
    unpainted = [i for i in range(64) if not many[i][2].any()]
    assert 0 < len(unpainted) < 16
    assert all(PairedDataset([photo] * 64, 16, train=True)[i][2].any() for i in unpainted)
    val = PairedDataset([photo] * 2, 32, train=False, scale=(0.5, 1.0), jitter=True)
    ref = PairedDataset([photo] * 2, 32, train=False)
    assert all(torch.equal(val[i][1], ref[i][1]) for i in range(2))          # evaluation: fixed
    with pytest.raises(ValueError, match="scale"):
        PairedDataset([photo], 32, train=True, scale=(0.0, 1.0))


def test_make_datasets_passes_mix_scale_jitter_and_val_size():
    from repair.damage import DAGUERREOTYPE_MIX

    cfg = get_config("tiny")
    train, val = make_datasets(cfg, damage_kwargs=DAGUERREOTYPE_MIX, scale=(0.5, 1.0),
                               jitter=True, val_size=48)
    assert train.jitter and train.scale == (0.5, 1.0) and not val.jitter and val.scale is None
    assert train.damage_kwargs == DAGUERREOTYPE_MIX == val.damage_kwargs
    assert train[0][0].shape[-1] == cfg.image_size and val[0][0].shape[-1] == 48
