"""Which database errors the store retries (pure: the errors are built, not provoked)."""

import psycopg
import pymysql
import pytest
from sqlalchemy.exc import OperationalError

from cachenet.store.engine import is_transient


def wrapped(orig):
    return OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "orig",
    [
        pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
        pymysql.err.OperationalError(1040, "Too many connections"),
        pymysql.err.OperationalError(1226, "User 'x' has exceeded the 'max_user_connections'"),
        pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
        pymysql.err.OperationalError(2006, "MySQL server has gone away"),
        pymysql.err.OperationalError(1047, "WSREP has not yet prepared node for application use"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.OperationalError("FATAL:  sorry, too many clients already"),
        psycopg.OperationalError('FATAL:  too many connections for role "x"'),
        psycopg.OperationalError("FATAL:  remaining connection slots are reserved for ..."),
    ],
)
def test_lost_races_and_a_server_out_of_connections_are_retried(orig):
    assert is_transient(wrapped(orig))


@pytest.mark.parametrize(
    "orig",
    [
        pymysql.err.OperationalError(1045, "Access denied for user 'x'"),
        pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1'"),
        psycopg.OperationalError("connection failed: Connection refused"),
        psycopg.OperationalError('FATAL:  database "x" does not exist'),
    ],
)
def test_a_server_that_is_down_or_refuses_us_is_not(orig):
    assert not is_transient(wrapped(orig))
