//! Integration tests of the models and of everything derived from the machine definitions.

mod models_check;
mod models_teeth;
