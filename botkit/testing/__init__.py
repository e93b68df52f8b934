"""Test doubles for what cannot run in a test: external services and models.

Never a replacement for botkit's own code: a test double stands in for the far side of
a seam (a translation model, a chat platform), and the real pipeline runs against it.
"""
