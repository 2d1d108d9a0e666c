//! Testkit: starts servers in-process on 127.0.0.1:0 for the integration tests.
