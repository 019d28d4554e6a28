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


def test_an_archive_folder_of_ucr_2015_text_files_loads_with_the_training_classes(tmp_path):
    import torch

    rng = np.random.default_rng(int(torch.randint(10**6, ())))
    rows = {split: [(int(rng.integers(1, 4)), rng.normal(size=9)) for _ in range(n)]
            for split, n in (("TRAIN", 6), ("TEST", 4))}
    # every class in the training split, so the test labels map onto its classes
    rows["TRAIN"][:3] = [(k, v) for k, (_, v) in zip((1, 2, 3), rows["TRAIN"][:3])]
    (tmp_path / "Toy").mkdir()
    for split, rs in rows.items():  # the UCR 2015 layout: label first, whitespace separated
        (tmp_path / "Toy" / f"Toy_{split}.txt").write_text(
            "".join(f"  {k:.7e}" + "".join(f"  {x:.7e}" for x in v) + "\n" for k, v in rs))
    train = load_ucr("Toy", "train", root=tmp_path)
    test = load_ucr("Toy", "test", classes=train.classes, root=tmp_path)
    assert len(train.series) == 6 and train.series[0].shape == (9, 1)
    np.testing.assert_allclose(test.series[2][:, 0].numpy(), rows["TEST"][2][1], rtol=1e-6)
    assert train.classes == ["1", "2", "3"]  # 1.0000000e+00 is class "1"
    assert [train.classes[k] for k in test.labels.tolist()] == [str(k) for k, _ in rows["TEST"]]
    with pytest.raises(FileNotFoundError, match="no Other_TRAIN file in .*Other .looked for "
                                                ".ts, .arff"):
        load_ucr("Other", "train", root=tmp_path)
