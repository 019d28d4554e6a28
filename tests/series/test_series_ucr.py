"""The bundled UCR/UEA loader reads with rnnkit's .ts reader: same values as sktime's own
reader, regression archives refused."""

import numpy as np
import pytest

pytest.importorskip("sktime")

from rnnkit.data.ucr import _data_dir, bundled_ucr_names, load_ucr  # noqa: E402


def test_regression_archives_are_not_listed_and_are_refused():
    names = bundled_ucr_names()
    assert "Tecator" not in names and "Covid3Month" not in names
    assert {"GunPoint", "JapaneseVowels", "ItalyPowerDemand", "OSULeaf"} <= set(names)
    with pytest.raises(ValueError, match="is a regression archive .@targetlabel true.; rnnkit "
                                         "classify needs class labels"):
        load_ucr("Tecator")


@pytest.mark.parametrize("name", ["JapaneseVowels", "BasicMotions"])
def test_reader_matches_sktime_on_a_multivariate_archive(name):
    import os

    from sktime.datasets import load_from_tsfile

    X, y = load_from_tsfile(os.path.join(_data_dir(), name, f"{name}_TRAIN.ts"),
                            return_data_type="nested_univ")
    data = load_ucr(name, "train")
    assert len(data.series) == len(X)
    for i in range(len(X)):
        ref = np.stack([np.asarray(X.iloc[i, c], dtype=np.float32) for c in range(X.shape[1])], 1)
        np.testing.assert_array_equal(data.series[i].numpy(), ref)
    # sktime lower-cases class names ("standing"); rnnkit keeps the file's ("Standing")
    assert [data.classes[k].lower() for k in data.labels.tolist()] == [str(v) for v in y]
