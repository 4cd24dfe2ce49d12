"""Does an image show the scene type it was generated for? A nearest-centroid probe in feature space.

Fitted on real images (one centroid per scene type of the features centred on the fitting set's
mean and scaled to unit length), it labels any image by the nearest centroid in cosine distance.
Centring matters: Inception's pooled features are all positive, so uncentred cosines are dominated
by the direction every image shares. Its accuracy on held-out real images is the yardstick;
on a conditional generator's images, with the labels they were drawn for, it measures how much of
the scene label the generator shows. A probe with no parameters to train needs no schedule, cannot
overfit a few hundred images, and costs nothing beyond the features FID and KID already compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.metrics.fid import MetricsError


def _normalised(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class CentroidProbe:
    """Unit-length class centroids around ``mean``; ``present[c]`` is False for a scene type with
    no fitting image."""

    mean: np.ndarray
    centroids: np.ndarray
    present: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, num_classes: int) -> CentroidProbe:
        labels = np.asarray(labels, dtype=np.int64)
        if len(features) != len(labels):
            raise MetricsError(f"scene probe: {len(features)} feature rows for {len(labels)} labels")
        mean = np.asarray(features, dtype=np.float64).mean(axis=0)
        unit = _normalised(features - mean)
        centroids = np.zeros((num_classes, unit.shape[1]))
        present = np.zeros(num_classes, dtype=bool)
        for scene in range(num_classes):
            rows = unit[labels == scene]
            if len(rows):
                centroids[scene] = rows.mean(axis=0)
                present[scene] = True
        if present.sum() < 2:
            raise MetricsError("scene probe: the fitting images cover fewer than 2 scene types")
        return cls(mean, _normalised(centroids), present)

    def predict(self, features: np.ndarray) -> np.ndarray:
        similarity = _normalised(np.asarray(features, dtype=np.float64) - self.mean) @ self.centroids.T
        similarity[:, ~self.present] = -np.inf
        return similarity.argmax(axis=1)

    def accuracy(self, features: np.ndarray, labels: np.ndarray) -> float:
        """Share of images whose nearest centroid is their own scene type."""
        labels = np.asarray(labels, dtype=np.int64)
        if not len(labels):
            raise MetricsError("scene probe: no images to score")
        return float((self.predict(features) == labels).mean())
