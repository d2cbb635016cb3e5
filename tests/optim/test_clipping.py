"""Gradient clipping by norm, Keras semantics (`clipnorm` per variable, `global_clipnorm`)."""

from __future__ import annotations

import numpy as np
import pytest

from optim import SGD, Adam, AdamW, RMSprop
from tape import Variable


def _clip(g, c):
    return g * c / max(np.linalg.norm(g), c)


def test_clipnorm_clips_each_gradient_by_its_own_norm():
    a, b = Variable(np.zeros(2)), Variable(np.zeros(2))
    SGD(1.0, clipnorm=1.0).apply_gradients([(np.array([3.0, 4.0]), a),
                                            (np.array([0.3, 0.4]), b)])
    np.testing.assert_allclose(a.numpy(), [-0.6, -0.8])
    np.testing.assert_allclose(b.numpy(), [-0.3, -0.4])  # under the norm: untouched


def test_global_clipnorm_clips_all_gradients_by_their_joint_norm():
    a, b = Variable(np.zeros(2)), Variable(0.0)
    SGD(1.0, global_clipnorm=6.5).apply_gradients([(np.array([3.0, 4.0]), a), (12.0, b)])
    np.testing.assert_allclose(a.numpy(), [-1.5, -2.0])  # global norm 13: halved
    assert float(b) == pytest.approx(-6.0)


MAKERS = [
    ("adam", lambda **kw: Adam(0.1, **kw)),
    ("adamw amsgrad", lambda **kw: AdamW(0.1, amsgrad=True, **kw)),
    ("rmsprop", lambda **kw: RMSprop(0.1, **kw)),
    ("momentum", lambda **kw: SGD(0.1, momentum=0.9, **kw)),
    ("nesterov", lambda **kw: SGD(0.1, momentum=0.9, nesterov=True, **kw)),
]


@pytest.mark.parametrize("name, make", MAKERS, ids=[m[0] for m in MAKERS])
def test_clipped_step_equals_step_on_clipped_gradients(name, make):
    rng = np.random.default_rng(0)
    clipped, manual = Variable(np.ones((3, 2))), Variable(np.ones((3, 2)))
    opt_clip, opt_manual = make(clipnorm=1.0), make()
    for scale in (0.1, 5.0, 0.2, 10.0, 3.0):
        g = rng.standard_normal((3, 2)) * scale
        opt_clip.apply_gradients([(g, clipped)])
        opt_manual.apply_gradients([(_clip(g, 1.0), manual)])
        np.testing.assert_allclose(clipped.numpy(), manual.numpy(), rtol=1e-12)


def test_clipping_can_be_switched_on_mid_run():
    w = Variable(np.zeros(2))
    opt = SGD(1.0)
    opt.apply_gradients([(np.array([3.0, 4.0]), w)])
    opt.global_clipnorm = 1.0
    opt.apply_gradients([(np.array([3.0, 4.0]), w)])
    np.testing.assert_allclose(w.numpy(), [-3.6, -4.8])
