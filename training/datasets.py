"""Datasets of the paper and of the demo, with the paper's augmentation and a seeded 9/1 split.

``load_data(name, root)`` returns :class:`DataSplits`: train / validation (a seeded 9/1 split of
the training set) and the test set kept apart, as torch ``Dataset`` objects for a plain
``DataLoader``. In-memory datasets (CIFAR, digits, synthetic) also expose their raw tensors
(``DataSplits.arrays``) for :class:`wcviz.training.loader.TensorLoader`, which applies the same
augmentation in batches on the training device.

Folder layouts expected under ``root``:

* CIFAR-10: ``cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``);
  CIFAR-100: ``cifar-100-python/`` (``train``, ``test``, ``meta``): the python pickles that
  torchvision downloads (``--download`` fetches them through torchvision).
* TinyImageNet: ``tiny-imagenet-200/`` with ``wnids.txt``, ``train/<wnid>/images/*.JPEG`` and
  ``val/images/*.JPEG`` + ``val/val_annotations.txt``. Its labelled ``val/`` is the test set
  (the paper reports top-1 on it).
* ImageNet: ``imagenet/train/<wnid>/*.JPEG`` and ``imagenet/val/<wnid>/*.JPEG`` (val sorted into
  class folders, as torchvision's reference scripts expect). ``val/`` is the test set.
* ``digits`` ships inside scikit-learn (8×8 handwritten digits, 1,797 images): no files needed.
* ``mnist1d``: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package with its
  published defaults (5,000 sequences of length 40, seed 42, 4,000 train / 1,000 test) and
  cached as ``mnist1d/mnist1d_<n>_seed<seed>.npz`` under the data root. No download.
* ``synthetic-cifar``: random CIFAR-shaped tensors, for throughput benchmarks only.
"""

from __future__ import annotations

import importlib.util
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from wcviz.training.models import CIFAR_INPUT, DIGITS_INPUT, IMAGENET_INPUT, MNIST1D_INPUT
from wcviz.errors import WcvizError
from wcviz.extras import require
from wcviz.record.atomic import write_atomic

# Per-channel statistics of the training images (RGB, on [0, 1] pixels).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Digits pixels are 0..16; mean/std of all 1,797 images after scaling to [0, 1].
DIGITS_MEAN, DIGITS_STD = (0.3052,), (0.3759,)
DIGITS_TEST_FRACTION = 0.2  # digits has no official test split: 20 % held out, fixed seed 0


@dataclass
class Augment:
    """The per-image recipe of an in-memory dataset.

    Attributes:
        pad: zero padding (pixels) before a random crop back to the original size; 0 = no crop.
        flip: random horizontal flips.
        scale: raw pixel value of 1.0 (255 for uint8 images, 16 for digits).
        mean, std: per-channel normalisation after scaling.
        size: image (H, W) in pixels; random crops keep it.
    """

    pad: int
    flip: bool
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: tuple[int, int] = (32, 32)


@dataclass
class ArraySplit:
    """One in-memory split: raw images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DataSplits:
    """Train / validation / test of one dataset.

    Attributes:
        name: dataset name.
        num_classes: number of classes.
        input_shape: (C, H, W) the model sees.
        train, val, test: torch Datasets yielding (image tensor, label).
        arrays: the same splits in memory (train/val/test), or None for folder datasets.
        augment: the recipe applied to ``arrays`` (train: crop/flip + normalise; else normalise).
    """

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    train: Dataset
    val: Dataset
    test: Dataset
    arrays: dict[str, ArraySplit] | None = None
    augment: Augment | None = None
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- augmentation


def augment_batch(images: torch.Tensor, aug: Augment, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
    """Random zero-padded crop and horizontal flip of raw images (N, C, H, W), batched.

    Same recipe as torchvision's ``RandomCrop(size, padding=pad)`` + ``RandomHorizontalFlip``,
    done with one gather on the images' device (no per-image Python work).
    """
    n, c, h, w = images.shape
    dev = images.device
    out = images
    if aug.pad:
        p = aug.pad
        padded = torch.nn.functional.pad(images, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), device=dev, generator=generator)
        dx = torch.randint(0, 2 * p + 1, (n,), device=dev, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        idx = torch.arange(n, device=dev)[:, None, None, None]
        chan = torch.arange(c, device=dev)[None, :, None, None]
        out = padded[idx, chan, rows, cols]
    if aug.flip:
        flip = torch.rand(n, device=dev, generator=generator) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out


class ArrayDataset(Dataset):
    """Per-sample view of an :class:`ArraySplit` through torchvision transforms (plain path)."""

    def __init__(self, split: ArraySplit, aug: Augment, train: bool):
        self.split, self.aug, self.train = split, aug, train
        self.transform = _torchvision_transform(aug, train)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        return self.transform(self.split.images[i]), int(self.split.labels[i])


def _torchvision_transform(aug: Augment, train: bool) -> Callable:
    import torchvision.transforms.v2 as T

    steps = []
    if train and aug.pad:
        steps.append(T.RandomCrop(aug.size, padding=aug.pad))
    if train and aug.flip:
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.Lambda(lambda x: x.float() / aug.scale))
    steps.append(T.Normalize(aug.mean, aug.std))
    return T.Compose(steps)


# ----------------------------------------------------------------------------- splitting


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into (train, val) index arrays (sorted)."""
    if not 0.0 <= val_fraction < 1.0:
        raise WcvizError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _from_arrays(name: str, num_classes: int, train: ArraySplit, test: ArraySplit,
                 aug: Augment, val_fraction: float, split_seed: int) -> DataSplits:
    tr_idx, va_idx = split_indices(len(train), val_fraction, split_seed)
    tr_idx, va_idx = torch.from_numpy(tr_idx), torch.from_numpy(va_idx)
    arrays = {
        "train": ArraySplit(train.images[tr_idx], train.labels[tr_idx]),
        "val": ArraySplit(train.images[va_idx], train.labels[va_idx]),
        "test": test,
    }
    return DataSplits(
        name, num_classes, tuple(train.images.shape[1:]),
        train=ArrayDataset(arrays["train"], aug, train=True),
        val=ArrayDataset(arrays["val"], aug, train=False),
        test=ArrayDataset(arrays["test"], aug, train=False),
        arrays=arrays, augment=aug)


# ----------------------------------------------------------------------------- CIFAR

#: name -> (folder, train files, test file, label key, classes, mean, std, torchvision class)
CIFAR_LAYOUTS = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                "labels", 10, CIFAR10_MEAN, CIFAR10_STD, "CIFAR10"),
    "cifar100": ("cifar-100-python", ["train"], "test", "fine_labels", 100, CIFAR100_MEAN,
                 CIFAR100_STD, "CIFAR100"),
}


#: The only globals a CIFAR python batch may name: numpy's array and dtype rebuilders, in
#: numpy 1 and 2 spellings (the rest is dicts, lists, str/bytes and ints, which need none).
_CIFAR_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3 (str -> bytes)
})


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds plain data and numpy arrays only: a crafted batch file cannot
    name any other callable (os.system, ...), so reading it cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, label_key: str) -> ArraySplit:
    with open(path, "rb") as fh:
        entry = _CifarUnpickler(fh, encoding="latin1").load()
    if not isinstance(entry, dict):
        raise ValueError(f"{path.name} holds a {type(entry).__name__}, not a dict")
    images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return ArraySplit(torch.from_numpy(images.copy()),
                      torch.as_tensor(entry[label_key], dtype=torch.int64))


def _download_cifar(name: str, root: Path) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, CIFAR_LAYOUTS[name][7])
    try:
        cls(str(root), train=True, download=True)
    except Exception as err:  # network errors come in many types (URLError, OSError, ...)
        raise WcvizError(f"could not download {name} into {root} ({err}); place the "
                         f"'{CIFAR_LAYOUTS[name][0]}' folder there by hand") from None


def _cifar_missing(name: str, root) -> str | None:
    """What is missing of CIFAR ``name`` under ``root`` (one line with the fix), or None."""
    folder, train_files, test_file = CIFAR_LAYOUTS[name][:3]
    base = Path(root) / folder
    missing = [f for f in [*train_files, test_file] if not (base / f).is_file()]
    if not missing:
        return None
    return (f"{name} not found: expected {base}/ with {', '.join(missing)}; pass --download "
            f"(needs network) or set --data-root to the folder above it")


def load_cifar(name: str, root: str | Path, *, download: bool = False, val_fraction: float = 0.1,
               split_seed: int = 0) -> DataSplits:
    """CIFAR-10/100 from torchvision's python pickles under ``root``.

    Train augmentation (the standard CIFAR recipe the paper follows): random crop 32 with zero
    padding 4, random horizontal flip; all splits normalised with per-channel mean/std.
    """
    folder, train_files, test_file, key, classes, mean, std, _ = CIFAR_LAYOUTS[name]
    base = Path(root) / folder
    if _cifar_missing(name, root) and download:
        _download_cifar(name, Path(root))
    problem = _cifar_missing(name, root)
    if problem:
        raise WcvizError(problem)
    try:
        parts = [_read_cifar_batch(base / f, key) for f in train_files]
        test = _read_cifar_batch(base / test_file, key)
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError, IndexError) as err:
        raise WcvizError(f"{name} files under {base} are corrupt ({err}); delete the folder and "
                         "download again") from None
    train = ArraySplit(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))
    aug = Augment(pad=4, flip=True, scale=255.0, mean=mean, std=std)
    return _from_arrays(name, classes, train, test, aug, val_fraction, split_seed)


# ----------------------------------------------------------------------------- digits, synthetic


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as (pixels (N, 64), labels (N,)), read from the file scikit-learn
    installs (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the label per row).

    Read directly, without importing scikit-learn: its import (~1 s) loads scipy and pandas,
    and pandas 3 loads pyarrow, none of which a training process (one per DDP rank) needs.
    A scikit-learn that keeps the file elsewhere is asked through its public loader."""
    require("sklearn", needed_by="the digits dataset (it comes with scikit-learn)")
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    if not path.is_file():
        from sklearn.datasets import load_digits as sk_digits

        bunch = sk_digits()
        return bunch.data, bunch.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_digits(root=None, *, download: bool = False, val_fraction: float = 0.1,
                split_seed: int = 0) -> DataSplits:
    """scikit-learn's 8×8 handwritten digits (real data, no files, no network).

    A fixed 20 % test split (seed 0), then the seeded 9/1 train/val split of the rest.
    No augmentation: flips and shifts would change what an 8×8 digit shows.
    """
    pixels, target = digits_arrays()
    images = torch.as_tensor(pixels, dtype=torch.uint8).reshape(-1, 1, 8, 8)  # 0..16
    labels = torch.as_tensor(target, dtype=torch.int64)
    rest, test = split_indices(len(labels), DIGITS_TEST_FRACTION, seed=0)
    rest, test = torch.from_numpy(rest), torch.from_numpy(test)
    aug = Augment(pad=0, flip=False, scale=16.0, mean=DIGITS_MEAN, std=DIGITS_STD, size=(8, 8))
    return _from_arrays("digits", 10, ArraySplit(images[rest], labels[rest]),
                        ArraySplit(images[test], labels[test]), aug, val_fraction, split_seed)


def load_synthetic_cifar(root=None, *, download: bool = False, val_fraction: float = 0.1,
                         split_seed: int = 0, n_train: int = 50_000, n_test: int = 10_000
                         ) -> DataSplits:
    """Random uint8 CIFAR-shaped images with random labels: throughput benchmarks only."""
    g = torch.Generator().manual_seed(split_seed)
    train = ArraySplit(torch.randint(0, 256, (n_train, 3, 32, 32), dtype=torch.uint8, generator=g),
                       torch.randint(0, 10, (n_train,), generator=g))
    test = ArraySplit(torch.randint(0, 256, (n_test, 3, 32, 32), dtype=torch.uint8, generator=g),
                      torch.randint(0, 10, (n_test,), generator=g))
    aug = Augment(pad=4, flip=True, scale=255.0, mean=CIFAR10_MEAN, std=CIFAR10_STD)
    return _from_arrays("synthetic-cifar", 10, train, test, aug, val_fraction, split_seed)


# ----------------------------------------------------------------------------- MNIST-1D

MNIST1D_FOLDER = "mnist1d"


def mnist1d_arrays(root: str | Path) -> dict[str, np.ndarray]:
    """MNIST-1D as generated by the ``mnist1d`` package's ``make_dataset`` with its default
    arguments (the published dataset's recipe), cached under ``root/mnist1d/``.

    Returns:
        ``x`` (4000, 40) float32, ``y`` (4000,) int64, ``x_test`` (1000, 40), ``y_test``.

    Raises:
        WcvizError: the package is missing (and no cache exists), or the cache is corrupt.
    """
    folder = Path(root) / MNIST1D_FOLDER
    args = _mnist1d_args()
    path = folder / f"mnist1d_{args.num_samples}_seed{args.seed}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as cached:
                return {k: cached[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError) as err:
            raise WcvizError(f"MNIST-1D cache {path} is corrupt ({err}); delete it and run "
                             "again (it is regenerated offline)") from None
    data = _generate_mnist1d(args)
    folder.mkdir(parents=True, exist_ok=True)
    # atomic and durable: a concurrent or killed run never sees half a file
    write_atomic(path, lambda fh: np.savez(fh, **data))
    return data


def _mnist1d_args():
    require("mnist1d", needed_by="dataset mnist1d (generated offline)")
    from mnist1d.data import get_dataset_args

    return get_dataset_args()


def _generate_mnist1d(args) -> dict[str, np.ndarray]:
    """Run the package's generator; it reseeds numpy's and Python's global RNGs, so their
    states are restored afterwards (training seeds must not depend on whether a cache hit)."""
    import random

    from mnist1d.data import make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x": raw["x"].astype(np.float32), "y": raw["y"].astype(np.int64),
            "x_test": raw["x_test"].astype(np.float32), "y_test": raw["y_test"].astype(np.int64)}


def load_mnist1d(root="data", *, download: bool = False, val_fraction: float = 0.1,
                 split_seed: int = 0) -> DataSplits:
    """MNIST-1D (:func:`mnist1d_arrays`): its 1,000-sequence test split kept apart, then the
    seeded 9/1 train/val split of the 4,000 training sequences. Sequences are already
    standardised by the generator (mean 0, std 1 over the dataset); no augmentation. Each
    sequence is a (1, 1, 40) "image" (C, H, W); the MNIST-1D models read the last axis."""
    data = mnist1d_arrays(root if root is not None else "data")

    def split(x, y):
        return ArraySplit(torch.from_numpy(x).reshape(len(x), 1, 1, -1), torch.from_numpy(y))

    length = data["x"].shape[1]
    aug = Augment(pad=0, flip=False, scale=1.0, mean=(0.0,), std=(1.0,), size=(1, length))
    return _from_arrays("mnist1d", 10, split(data["x"], data["y"]),
                        split(data["x_test"], data["y_test"]), aug, val_fraction, split_seed)


# ----------------------------------------------------------------------------- image folders


def _imagenet_transforms():
    """The paper's TinyImageNet/ImageNet recipe: random crop 224 + flip; val resize 256, crop 224."""
    import torchvision.transforms as T

    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    evaluate = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), norm])
    return train, evaluate


class TinyImageNetVal(Dataset):
    """TinyImageNet's labelled ``val/``: images in one folder, labels in val_annotations.txt."""

    def __init__(self, folder: Path, class_to_idx: dict[str, int], transform: Callable):
        from torchvision.datasets.folder import default_loader

        self.loader, self.transform = default_loader, transform
        self.samples = []
        for line in (folder / "val_annotations.txt").read_text().splitlines():
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            if parts[1] not in class_to_idx:
                raise WcvizError(f"{folder}/val_annotations.txt names class {parts[1]!r} that "
                                 "train/ does not have; the dataset folder is inconsistent")
            self.samples.append((folder / "images" / parts[0], class_to_idx[parts[1]]))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        return self.transform(self.loader(str(path))), label


def _image_folder(path: Path, transform, dataset: str):
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(path), transform=transform)
    except (FileNotFoundError, RuntimeError) as err:
        raise WcvizError(f"{dataset}: no images under {path} ({err}); check --data-root") from None


def _folder_splits(name: str, train_dir: Path, make_test: Callable, val_fraction: float,
                   split_seed: int) -> DataSplits:
    train_tf, eval_tf = _imagenet_transforms()
    train_view = _image_folder(train_dir, train_tf, name)
    eval_view = _image_folder(train_dir, eval_tf, name)
    tr_idx, va_idx = split_indices(len(train_view), val_fraction, split_seed)
    test = make_test(train_view.class_to_idx, eval_tf)
    return DataSplits(name, len(train_view.classes), (3, 224, 224),
                      train=Subset(train_view, tr_idx.tolist()),
                      val=Subset(eval_view, va_idx.tolist()), test=test,
                      extra={"classes": train_view.classes})


def _tinyimagenet_missing(root) -> str | None:
    base = Path(root) / "tiny-imagenet-200"
    if (base / "train").is_dir() and (base / "val" / "val_annotations.txt").is_file():
        return None
    return (f"tinyimagenet not found: expected {base}/train/<wnid>/images/ and "
            f"{base}/val/val_annotations.txt; download tiny-imagenet-200.zip and unzip it "
            "under --data-root")


def _imagenet_missing(root) -> str | None:
    base = Path(root) / "imagenet"
    if (base / "train").is_dir() and (base / "val").is_dir():
        return None
    return (f"imagenet not found: expected {base}/train/<wnid>/*.JPEG and "
            f"{base}/val/<wnid>/*.JPEG; set --data-root to the folder above it")


def load_tinyimagenet(root, *, download: bool = False, val_fraction: float = 0.1,
                      split_seed: int = 0) -> DataSplits:
    """TinyImageNet (200 classes) from ``root/tiny-imagenet-200``; its val/ is the test set."""
    base = Path(root) / "tiny-imagenet-200"
    problem = _tinyimagenet_missing(root)
    if problem:
        raise WcvizError(problem)
    return _folder_splits("tinyimagenet", base / "train",
                          lambda c2i, tf: TinyImageNetVal(base / "val", c2i, tf),
                          val_fraction, split_seed)


def load_imagenet(root, *, download: bool = False, val_fraction: float = 0.1,
                  split_seed: int = 0) -> DataSplits:
    """ImageNet (ILSVRC 2012) from ``root/imagenet/{train,val}/<wnid>/``; val/ is the test set."""
    base = Path(root) / "imagenet"
    problem = _imagenet_missing(root)
    if problem:
        raise WcvizError(problem)

    def make_test(class_to_idx, tf):
        test = _image_folder(base / "val", tf, "imagenet")
        if test.class_to_idx != class_to_idx:
            raise WcvizError(f"imagenet: {base}/val and {base}/train have different classes")
        return test

    return _folder_splits("imagenet", base / "train", make_test, val_fraction, split_seed)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader and what a model must fit without loading it.

    Attributes:
        load: ``load(root, download=, val_fraction=, split_seed=) -> DataSplits``.
        input_shape: (C, H, W) of the images the model sees.
        num_classes: number of classes.
        display: the paper's spelling (tables).
    """

    load: Callable[..., DataSplits]
    input_shape: tuple[int, int, int]
    num_classes: int
    display: str


#: name -> :class:`DatasetSpec`.
DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(lambda root, **kw: load_cifar("cifar10", root, **kw), CIFAR_INPUT,
                           10, "CIFAR-10"),
    "cifar100": DatasetSpec(lambda root, **kw: load_cifar("cifar100", root, **kw), CIFAR_INPUT,
                            100, "CIFAR-100"),
    "tinyimagenet": DatasetSpec(load_tinyimagenet, IMAGENET_INPUT, 200, "TinyImageNet"),
    "imagenet": DatasetSpec(load_imagenet, IMAGENET_INPUT, 1000, "ImageNet"),
    "digits": DatasetSpec(load_digits, DIGITS_INPUT, 10, "digits"),
    "mnist1d": DatasetSpec(load_mnist1d, MNIST1D_INPUT, 10, "MNIST-1D"),
    "synthetic-cifar": DatasetSpec(load_synthetic_cifar, CIFAR_INPUT, 10, "synthetic CIFAR"),
}


#: dataset -> what is missing of its files under a root (None: all there); datasets made or
#: fetched by their loader (digits, MNIST-1D, synthetic) have nothing to check.
_MISSING: dict[str, Callable[[str | Path], str | None]] = {
    "cifar10": lambda root: _cifar_missing("cifar10", root),
    "cifar100": lambda root: _cifar_missing("cifar100", root),
    "tinyimagenet": _tinyimagenet_missing,
    "imagenet": _imagenet_missing,
}


def check_data(name: str, root: str | Path = "data", download: bool = False) -> None:
    """Refuse at once a dataset whose files are not where its loader looks (reads no file).

    With ``download`` CIFAR is fetched by the run itself, so it is not checked.

    Raises:
        WcvizError: the loader's own one-line message (folder and fix).
    """
    if download and name in ("cifar10", "cifar100"):
        return
    check = _MISSING.get(name)
    problem = check(root) if check is not None else None
    if problem:
        raise WcvizError(problem)


def load_data(name: str, root: str | Path = "data", *, download: bool = False,
              val_fraction: float = 0.1, split_seed: int = 0) -> DataSplits:
    """Load a dataset by name.

    Args:
        name: a key of :data:`DATASETS`.
        root: folder holding the dataset folders (see the module docstring).
        download: fetch CIFAR through torchvision when missing (needs network).
        val_fraction: share of the training set held out for validation (paper: 0.1).
        split_seed: seed of the train/validation split.

    Returns:
        The dataset's :class:`DataSplits`.

    Raises:
        WcvizError: unknown name, or files missing/corrupt (the message names the folder).
    """
    if name not in DATASETS:
        raise WcvizError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name].load(root, download=download, val_fraction=val_fraction,
                               split_seed=split_seed)
