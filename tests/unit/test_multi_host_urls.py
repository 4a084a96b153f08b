"""Multi-host PostgreSQL URLs through cachenet's URL checks and masking."""

from cachenet.settings import database_problem, mask_password

REPEATED = (
    "postgresql+psycopg://cachenet:s3cret@/cachenet"
    "?host=db1:5432&host=db2:5433&target_session_attrs=read-write"
)
SOCKETS = (
    "postgresql+psycopg://cachenet:s3cret@/cachenet"
    "?host=/run/postgresql:5432&host=/run/postgresql:5433&target_session_attrs=read-write"
)


def test_one_host_per_server_is_accepted_and_masked():
    for url in (REPEATED, SOCKETS):
        assert database_problem(url) is None
        shown = mask_password(url)
        assert "s3cret" not in shown
        assert "target_session_attrs=read-write" in shown


def test_several_host_port_pairs_in_one_host_are_refused_without_the_password():
    url = "postgresql+psycopg://cachenet:s3cret@/cachenet?host=db1:5432,db2:5433"
    problem = database_problem(url)
    assert problem is not None and "host=db1:5432&host=db2:5432" in problem
    assert "s3cret" not in problem
