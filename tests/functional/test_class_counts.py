"""Class counts: validation, the counts JSON, the log-prior."""
import json
import math

import pytest
import torch

from mmnpe.functional import check_class_counts, load_class_counts, log_prior


def test_valid_counts_become_float64():
    t = check_class_counts([3, 1, 0.5], num_classes=3)
    assert t.dtype == torch.float64
    assert t.tolist() == [3.0, 1.0, 0.5]


def test_log_prior_closed_form():
    lp = log_prior(check_class_counts([3, 1]))
    assert torch.allclose(
        lp, torch.tensor([math.log(0.75), math.log(0.25)],
                         dtype=torch.float64))
    lp = log_prior(check_class_counts([1, 0], eps=1e-6), eps=1e-6)
    assert lp[1].item() == pytest.approx(math.log(1e-6))
    assert torch.isfinite(lp).all()


@pytest.mark.parametrize('counts, match', [
    ([1, 2], r'class_counts must have num_classes=3 entries, got 2'),
    ([1, -2, 3], r'class_counts\[1\] must be >= 0, got -2'),
    ([1, float('nan'), 3], r'class_counts\[1\] must be a finite number'),
    ([1, 2, float('inf')], r'class_counts\[2\] must be a finite number'),
    ([0, 0, 0], r'class_counts must not be all zero'),
    ([4, 0, 3], r'class_counts\[1\] is 0 \(class index 1.*explicit eps'),
    ([[1, 2, 3]], r'non-empty 1-d sequence'),
])
def test_bad_counts_name_argument_and_class(counts, match):
    with pytest.raises(ValueError, match=match):
        check_class_counts(counts, num_classes=3)


def test_bad_eps_and_types():
    with pytest.raises(ValueError, match=r'eps must be None or a finite'):
        check_class_counts([1, 0], eps=-1)
    with pytest.raises(TypeError, match='load_class_counts for a path'):
        check_class_counts('counts.json')
    with pytest.raises(TypeError, match='sequence of numbers'):
        check_class_counts(['a', 'b'])


def test_counts_json_round_trip_and_class_names(tmp_path):
    path = tmp_path / 'counts.json'
    path.write_text(
        json.dumps(dict(kind='pixels', classes=['a', 'b'], counts=[10, 5])))
    assert load_class_counts(str(path), classes=['a', 'b']) == [10, 5]
    assert load_class_counts(str(path)) == [10, 5]
    with pytest.raises(ValueError, match=r"index 1: 'b' in the file, 'c'"):
        load_class_counts(str(path), classes=['a', 'c'])
    with pytest.raises(ValueError, match='2 classes in the file, 3 in the'):
        load_class_counts(str(path), classes=['a', 'b', 'c'])
    with pytest.raises(FileNotFoundError, match='class_counts.py'):
        load_class_counts(str(tmp_path / 'missing.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('[1, 2]')
    with pytest.raises(ValueError, match='"counts" list'):
        load_class_counts(str(bad))
    assert load_class_counts([1, 2]) == [1, 2]
    assert load_class_counts(torch.tensor([1., 2.])) == [1.0, 2.0]
