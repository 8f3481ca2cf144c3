"""Tooling outside the science: preparing the offline data (`prepare`) and reading benchmark results
(`benchreport`). The science modules never import from here; tools may import the science."""
