"""The recurring-issue model is stored as plain arrays with a format version, never as a pickle (issue 14.8)."""
from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np

from helpdesk.insights import clustering, service
from helpdesk.insights.models import RecurringRun


def test_stored_model_is_arrays_and_gives_the_same_vectors(db, import_lines, labelled_rows):
    import_lines(labelled_rows)
    service.refresh_groups(db.session)
    run, state = service._latest_model(db.session)
    assert run is not None
    blob = run.model_blob
    assert zipfile.is_zipfile(io.BytesIO(blob))  # an .npz
    with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:  # loads without pickle
        assert int(arrays["format"][0]) == clustering.MODEL_FORMAT
        assert arrays["centroids"].shape[0] == len(state["centroids"]) == len(state["bars"])
        assert arrays["words_terms"].dtype.kind == "U"
    texts = ["ログイン できない 初期 パスワード"], ["ログインできない初期パスワード"]
    model = state["model"]
    vectors, _energy = model.project(model.transform(*texts))
    reloaded = service._latest_model(db.session)[1]["model"]  # a second load from the stored arrays
    again, _ = reloaded.project(reloaded.transform(*texts))
    assert np.allclose(vectors, again) and np.isfinite(vectors).all()


def test_a_pickled_or_foreign_blob_is_not_loaded(db, import_lines, labelled_rows):
    import_lines(labelled_rows)
    service.refresh_groups(db.session)
    run = db.session.query(RecurringRun).filter(RecurringRun.model_blob.is_not(None)).one()
    run.model_blob = pickle.dumps({"model": "anything"})
    db.session.commit()
    assert service._latest_model(db.session) == (None, None)  # waits for the next refresh, never unpickles
    with np.load(io.BytesIO(service._model_blob(_small_model(), [np.ones(2, np.float32)], [0.5])),
                 allow_pickle=False) as arrays:
        stored = dict(arrays)
    stored["format"] = np.array([clustering.MODEL_FORMAT + 1])
    buffer = io.BytesIO()
    np.savez(buffer, **stored)
    run.model_blob = buffer.getvalue()
    db.session.commit()
    assert service._latest_model(db.session) == (None, None)


def _small_model() -> clustering.Model:
    model = clustering.Model()
    texts = ["納品 予定日 表示", "納品 予定日 空欄", "印刷 伝票 ずれる", "印刷 伝票 できない"] * 2
    model.fit_lsa(model.fit_transform(texts, [t.replace(" ", "") for t in texts]), 2)
    return model
