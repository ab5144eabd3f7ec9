import numpy as np

from kws.scoring.templates import PerTemplate, Templates


def test_rows_follow_the_templates_order():
    takes = [np.ones((3, 2)), 2 * np.ones((4, 2))]
    t = Templates(takes, np.zeros((3, 2)))
    assert [len(x) for x in t.all()] == [3, 4, 3] and t.all()[-1] is t.average
    rows = PerTemplate.of(np.array([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]))   # two takes, then the average
    assert rows.takes.tolist() == [[1.0, 2.0], [3.0, 4.0]] and rows.average.tolist() == [9.0, 9.0]
    assert PerTemplate.of(["a", "b", "avg"]) == PerTemplate(["a", "b"], "avg")
