"""The classification error of one student against sign labels (numerics/analyses/classification.py)."""

from __future__ import annotations

import numpy as np
import pytest

from derive.model.model import Model
from numerics.analyses.classification import classification_error


def model(flip="0.1", student="erf(x/sqrt(2))", teacher="sign(x)", a="1", b="1"):
    return Model(student_activation=student, teacher_activation=teacher, student_readout=a, teacher_readout=b,
                 label_flip=flip)


@pytest.mark.parametrize(("student", "a", "b"), [("erf(x/sqrt(2))", "1", "1"), ("erf(2*x)", "-1", "1")])
def test_against_monte_carlo_with_power(student, a, b):
    rng = np.random.default_rng(3)
    n = 1_000_000
    q, r, t = np.array([[1.2]]), np.array([[0.9]]), np.array([[1.0]])  # a student close to the teacher
    w = rng.standard_normal((n, 2)) @ np.linalg.cholesky(np.block([[q, r], [r.T, t]])).T
    labels = float(b) * np.sign(w[:, 1]) * np.where(rng.random(n) < 0.1, -1.0, 1.0)
    wrong = np.sign(float(a) * w[:, 0]) != labels
    value = classification_error(q, r, t, model=model(student=student, a=a, b=b))
    assert abs(value - wrong.mean()) < 5 * wrong.std() / np.sqrt(n)
    # power: without the flips the closed form is far off
    assert abs(classification_error(q, r, t, model=model("0", student, a=a, b=b)) - wrong.mean()) > 0.05


def test_batched_equals_one_by_one():
    Q = np.array([[[1.0]], [[2.0]]])
    R = np.array([[[0.3]], [[-0.5]]])
    T = np.ones((2, 1, 1))
    batched = classification_error(Q, R, T, model=model())
    for i in range(2):
        assert batched[i] == pytest.approx(classification_error(Q[i], R[i], T[i], model=model()), rel=1e-15)


def test_refusals_name_the_problem():
    eye = np.eye(2)
    with pytest.raises(ValueError, match="one student and one teacher"):
        classification_error(eye, np.zeros((2, 2)), eye, model=model())
    one = (np.eye(1), np.zeros((1, 1)), np.eye(1))
    with pytest.raises(ValueError, match="sign"):
        classification_error(*one, model=model("0", teacher="erf(x/sqrt(2))"))
