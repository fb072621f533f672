//! Stateright models built on the arqon-core state machines: each machine alone and the distributed system.
