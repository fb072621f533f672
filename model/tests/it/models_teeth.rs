//! The checker has teeth: test-only broken variants are caught, with a readable counterexample.
