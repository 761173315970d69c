"""Uploaded files -> a domain Network: each format's reader, every bad feature reported."""
