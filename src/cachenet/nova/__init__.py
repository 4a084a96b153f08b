"""The Nova adapter (``pip install cachenet[nova]``): a LibvirtDriver subclass.

Only this package imports Nova; the rest of cachenet works without it.
"""
