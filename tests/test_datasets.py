"""Dataset loaders on tiny generated files in the real on-disk formats."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from wcviz.training.datasets import (CIFAR10_MEAN, CIFAR10_STD, Augment, augment_batch,
                               digits_arrays, load_data, split_indices)
from wcviz.errors import WcvizError
from _engines import framework


def _write_cifar10(root, per_batch=4, n_test=6):
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        lab = [int(x) for x in rng.integers(0, 10, per_batch)]
        images.append(data)
        labels += lab
        with open(base / f"data_batch_{i}", "wb") as fh:
            pickle.dump({"batch_label": f"training batch {i} of 5", "labels": lab, "data": data,
                         "filenames": [f"img{i}_{j}.png" for j in range(per_batch)]}, fh)
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    with open(base / "test_batch", "wb") as fh:
        pickle.dump({"labels": [int(x) for x in rng.integers(0, 10, n_test)], "data": test}, fh)
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch":
                     per_batch, "num_vis": 3072}, fh)
    return np.concatenate(images).reshape(-1, 3, 32, 32), labels


def test_cifar10_pickles_split_and_normalise(tmp_path):
    images, labels = _write_cifar10(tmp_path)
    data = load_data("cifar10", tmp_path, val_fraction=0.2, split_seed=1)
    assert (data.num_classes, data.input_shape) == (10, (3, 32, 32))
    assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 6)
    tr, va = split_indices(20, 0.2, seed=1)
    assert torch.equal(data.arrays["val"].images, torch.from_numpy(images[va]))
    assert data.arrays["train"].labels.tolist() == [labels[i] for i in tr]
    x, y = data.val[0]  # evaluation view: normalised, no augmentation
    mean, std = torch.tensor(CIFAR10_MEAN).view(3, 1, 1), torch.tensor(CIFAR10_STD).view(3, 1, 1)
    expected = (torch.from_numpy(images[va[0]]).float() / 255 - mean) / std
    torch.testing.assert_close(x, expected)
    assert y == labels[va[0]]
    assert data.train[0][0].shape == (3, 32, 32)
    # the split depends on its seed only
    again = load_data("cifar10", tmp_path, val_fraction=0.2, split_seed=1)
    other = load_data("cifar10", tmp_path, val_fraction=0.2, split_seed=2)
    assert torch.equal(again.arrays["val"].images, data.arrays["val"].images)
    assert not torch.equal(other.arrays["val"].images, data.arrays["val"].images)


def test_cifar100_fine_labels(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 10), ("test", 4)):
        with open(base / name, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         "fine_labels": list(range(90, 90 + n)), "coarse_labels": [0] * n}, fh)
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [str(i) for i in range(100)]}, fh)
    data = load_data("cifar100", tmp_path)
    assert data.num_classes == 100
    assert (len(data.train), len(data.val), len(data.test)) == (9, 1, 4)
    assert data.arrays["test"].labels.tolist() == [90, 91, 92, 93]


def test_missing_cifar_names_the_folder(tmp_path):
    with pytest.raises(WcvizError, match=r"cifar-10-batches-py.*--download"):
        load_data("cifar10", tmp_path / "nowhere")


def test_corrupt_cifar_is_a_clear_error(tmp_path):
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(WcvizError, match="corrupt"):
        load_data("cifar10", tmp_path)


def _jpeg(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path)


def test_tinyimagenet_val_annotations(tmp_path):
    base = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02", "n03"]
    for k, w in enumerate(wnids):
        for j in range(4):
            _jpeg(base / "train" / w / "images" / f"{w}_{j}.JPEG", (40 * k, 0, 0))
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    rows = [("val_0.JPEG", "n03"), ("val_1.JPEG", "n01"), ("val_2.JPEG", "n02")]
    for name, w in rows:
        _jpeg(base / "val" / "images" / name, (0, 0, 0))
    (base / "val" / "val_annotations.txt").write_text(
        "".join(f"{n}\t{w}\t0\t0\t8\t8\n" for n, w in rows))
    data = load_data("tinyimagenet", tmp_path, val_fraction=0.25)
    assert data.num_classes == 3 and data.input_shape == (3, 224, 224)
    assert (len(data.train), len(data.val), len(data.test)) == (9, 3, 3)
    assert [data.test.samples[i][1] for i in range(3)] == [2, 0, 1]
    x, y = data.test[0]
    assert x.shape == (3, 224, 224) and y == 2
    assert data.train[0][0].shape == (3, 224, 224)


def test_tinyimagenet_unknown_val_class(tmp_path):
    base = tmp_path / "tiny-imagenet-200"
    _jpeg(base / "train" / "n01" / "images" / "a.JPEG", (0, 0, 0))
    _jpeg(base / "val" / "images" / "v.JPEG", (0, 0, 0))
    (base / "val" / "val_annotations.txt").write_text("v.JPEG\tn99\t0\t0\t8\t8\n")
    with pytest.raises(WcvizError, match="n99"):
        load_data("tinyimagenet", tmp_path)


def test_imagenet_folders(tmp_path):
    for split, n in (("train", 5), ("val", 2)):
        for w in ("n10", "n20"):
            for j in range(n):
                _jpeg(tmp_path / "imagenet" / split / w / f"{j}.JPEG", (10, 20, 30))
    data = load_data("imagenet", tmp_path, val_fraction=0.2)
    assert data.num_classes == 2
    assert (len(data.train), len(data.val), len(data.test)) == (8, 2, 4)
    assert data.test[3][1] == 1
    (tmp_path / "imagenet" / "val" / "n30").mkdir()
    _jpeg(tmp_path / "imagenet" / "val" / "n30" / "x.JPEG", (0, 0, 0))
    with pytest.raises(WcvizError, match="different classes"):
        load_data("imagenet", tmp_path)


def test_missing_image_folders_name_the_layout(tmp_path):
    with pytest.raises(WcvizError, match="tiny-imagenet-200"):
        load_data("tinyimagenet", tmp_path)
    with pytest.raises(WcvizError, match=r"imagenet/train"):
        load_data("imagenet", tmp_path)


def test_digits_are_real_and_split():
    data = load_data("digits")
    assert (len(data.train), len(data.val), len(data.test)) == (1294, 144, 359)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    everything = torch.cat([data.arrays[s].labels for s in ("train", "val", "test")])
    assert torch.bincount(everything).min() >= 170  # ~180 of each digit
    x = torch.stack([data.train[i][0] for i in range(300)])
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2


def test_digits_read_from_scikit_learns_file_equal_its_loader():
    from sklearn.datasets import load_digits as sk_digits

    pixels, labels = digits_arrays()
    bunch = sk_digits()
    np.testing.assert_array_equal(pixels, bunch.data)
    np.testing.assert_array_equal(labels, bunch.target)


def test_digits_come_from_scikit_learns_loader_where_its_file_is_elsewhere(tmp_path, monkeypatch):
    """A scikit-learn that keeps the file elsewhere: its public loader gives the same arrays."""
    import importlib.util

    from sklearn.datasets import load_digits as sk_digits

    real = importlib.util.find_spec
    moved = importlib.machinery.ModuleSpec("sklearn", None, is_package=True)
    moved.submodule_search_locations = [str(tmp_path)]  # no datasets/data/digits.csv.gz there
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: moved if name == "sklearn" else real(name, *args))
    pixels, labels = digits_arrays()
    np.testing.assert_array_equal(pixels, sk_digits().data)
    np.testing.assert_array_equal(labels, sk_digits().target)


def test_mnist1d_is_generated_offline_cached_and_split(tmp_path):
    import random

    framework("mnist1d")
    np_state, py_state = np.random.get_state()[1][:5].copy(), random.getstate()
    data = load_data("mnist1d", tmp_path)
    assert (np.random.get_state()[1][:5] == np_state).all() and random.getstate() == py_state
    cache = tmp_path / "mnist1d" / "mnist1d_5000_seed42.npz"
    assert cache.exists()
    assert (len(data.train), len(data.val), len(data.test)) == (3600, 400, 1000)
    assert data.input_shape == (1, 1, 40) and data.num_classes == 10
    everything = torch.cat([data.arrays[s].labels for s in ("train", "val", "test")])
    assert torch.bincount(everything).tolist() == [500] * 10  # the generator's 500 per class
    x = torch.cat([data.arrays[s].images for s in ("train", "val", "test")])
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-2  # standardised
    from mnist1d.data import get_dataset_args, make_dataset

    fresh = make_dataset(get_dataset_args())  # the package's own generator, same defaults
    again = load_data("mnist1d", tmp_path)  # from the cache
    np.testing.assert_allclose(again.arrays["test"].images.reshape(1000, 40).numpy(),
                               fresh["x_test"], rtol=1e-6, atol=1e-6)
    assert again.arrays["test"].labels.tolist() == fresh["y_test"].tolist()
    cache.write_bytes(b"not an npz")
    with pytest.raises(WcvizError, match="corrupt"):
        load_data("mnist1d", tmp_path)


def test_augment_batch_crops_are_padded_translations_and_flips():
    imgs = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    aug = Augment(pad=2, flip=True, scale=1.0, mean=(0.0,), std=(1.0,), size=(6, 6))
    torch.manual_seed(0)
    for _ in range(20):
        out = augment_batch(imgs, aug)
        for i in range(2):
            padded = torch.nn.functional.pad(imgs[i], (2, 2, 2, 2))
            windows = [padded[:, y:y + 6, x:x + 6] for y in range(5) for x in range(5)]
            assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2))
                       for w in windows)


def test_unknown_dataset():
    with pytest.raises(WcvizError, match="unknown dataset 'mnist'"):
        load_data("mnist")
