"""Tests of the inference server (server/)."""
