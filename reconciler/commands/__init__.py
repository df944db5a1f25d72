"""One module per `dfr` command; each function returns an exit code.

The click layer in `reconciler.cli` parses arguments and calls these; they
wire the core objects together and write to the streams they are given.
"""
