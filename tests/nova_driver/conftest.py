# Nova's test package patches eventlet in; that must happen before anything else
# is imported, so the Nova tests run in a pytest process of their own
# (scripts/test.sh), never beside the other tests.
import nova.tests.functional  # noqa: F401
