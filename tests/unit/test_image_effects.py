"""The twin camera's image effects (legion_core/sim/camera.py ImageEffects): off by default and then exact,
each effect doing what its field says, bad values refused naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.sim.camera import ImageEffects


def _scene() -> np.ndarray:
    img = np.full((60, 80, 3), 100, np.uint8)
    img[20:40, 30:50] = 200  # a bright square: edges for the blur to soften
    return img


def test_off_by_default_returns_the_render_untouched():
    img = _scene()
    fx = ImageEffects()
    assert not fx.active
    assert fx.make()(img) is img


def test_exposure_scales_and_clips():
    out = ImageEffects(exposure_gain=1.5).make()(_scene())
    assert out[0, 0, 0] == 150 and out[30, 40, 0] == 255  # 300 clipped


def test_blur_softens_edges_and_keeps_the_mean():
    img = _scene()
    out = ImageEffects(blur_sigma_px=2.0).make()(img)
    assert 100 < out[30, 30, 0] < 200  # the square's edge is now in between
    assert abs(out.astype(float).mean() - img.astype(float).mean()) < 1.0


def test_noise_has_the_asked_spread_and_its_seed_repeats():
    img = _scene()
    a, b = ImageEffects(noise_std_dn=5.0, seed=3).make(), ImageEffects(noise_std_dn=5.0, seed=3).make()
    na, nb = a(img), b(img)
    assert np.array_equal(na, nb)
    diff = na[:15].astype(float) - 100.0  # the flat region, far from clipping
    assert diff.std() == pytest.approx(5.0, rel=0.1)
    assert not np.array_equal(a(img), na)  # the next frame gets new noise


@pytest.mark.parametrize("field", ["exposure_gain", "blur_sigma_px", "noise_std_dn"])
def test_bad_values_name_the_field(field):
    with pytest.raises(ValueError, match=field):
        ImageEffects(**{field: -1.0})
    with pytest.raises(ValueError, match=field):
        ImageEffects(**{field: float("nan")})
