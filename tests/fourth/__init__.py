"""A fourth provider that lives only in the tests: it proves the contract suite's claim."""
