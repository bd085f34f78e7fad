"""Real data that ships inside packages: scikit-learn's digits and breast cancer, scikit-image's photos.

Imports inside functions are deliberately lazy: scikit-learn's and scikit-image's data load when a case is built.
"""

from __future__ import annotations

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea")


def digits_images(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, upsampled to size x size RGB pixels in 0..255, and their classes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    factor = size // 8
    images = np.kron(digits.images, np.ones((factor, factor))) * (255.0 / 16.0)
    rgb = np.repeat(images[..., None], 3, axis=-1)
    return rgb.astype(np.float32), digits.target.astype(np.int64)


def digits_vectors() -> tuple[np.ndarray, np.ndarray]:
    """The 64 digit pixels as features in 0..1, and the classes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


def photo_patches(n: int = 600, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random crops of three scikit-image photographs (RGB, 0..255); the class is the photo."""
    import skimage.data

    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)().astype(np.float32) for name in PHOTOS]
    images, labels = [], []
    for i in range(n):
        label = i % len(photos)
        photo = photos[label]
        top = rng.integers(0, photo.shape[0] - size)
        left = rng.integers(0, photo.shape[1] - size)
        images.append(photo[top:top + size, left:left + size])
        labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64)


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's breast cancer table: 30 features on very different scales, binary target."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's diabetes table: 10 (already scaled) features, disease progression 25..346."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    return data.data.astype(np.float32), data.target.astype(np.float64)


def coin_patches(n: int = 96, size: int = 48, quantile: float = 0.6, seed: int = 0):
    """Crops of scikit-image's coins with masks from a brightness threshold.

    Args:
        quantile: pixels brighter than this quantile of the photo are foreground
            (0.6: about 40% foreground; 0.985: a rare class).

    Returns:
        images (n, size, size, 1) in 0..1, masks (n, size, size) of 0/1.
    """
    import skimage.data
    from skimage.filters import gaussian

    rng = np.random.default_rng(seed)
    coins = skimage.data.coins().astype(np.float32) / 255.0
    smooth = gaussian(coins, sigma=2)
    mask = smooth > np.quantile(smooth, quantile)
    images, masks = [], []
    for _ in range(n):
        top = rng.integers(0, coins.shape[0] - size)
        left = rng.integers(0, coins.shape[1] - size)
        images.append(coins[top:top + size, left:left + size, None])
        masks.append(mask[top:top + size, left:left + size])
    return np.stack(images), np.stack(masks).astype(np.int64)
