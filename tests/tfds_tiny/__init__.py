"""Tiny TFDS datasets built locally in tests: images (random 8x8, 3 classes) and text.

Images are a uint8 Tensor feature: encoding an Image feature (PNG) needs TensorFlow.

TFDS resolves a builder's code path through its package, so it lives in a package.
"""

import numpy as np
import tensorflow_datasets as tfds


class DrTinyImages(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
        'image': tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
        'label': tfds.features.ClassLabel(num_classes=3)}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(150), 'test': self._generate_examples(30)}

  def _generate_examples(self, n):
    rng = np.random.default_rng(n)
    for i in range(n):
      yield i, {'image': rng.integers(0, 255, (8, 8, 1), dtype=np.uint8), 'label': i % 3}


class DrTinyText(tfds.core.GeneratorBasedBuilder):
  """Lines of pseudo-words with a `text` feature (the shape of wikitext103 / lm1b)."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({'text': tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(400), 'test': self._generate_examples(80)}

  def _generate_examples(self, n):
    rng = np.random.default_rng(n)
    for i in range(n):
      words = [''.join(rng.choice(list('abcdefgh'), rng.integers(2, 7))) for _ in range(12)]
      yield i, {'text': ' '.join(words)}
