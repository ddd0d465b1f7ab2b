//! AWS executors and their connector (feature `aws`).

pub mod connector;
pub mod error;
<<<<<<< HEAD
pub mod rds;
=======
pub mod factory;
>>>>>>> run
pub mod wait;

pub use factory::executor_for;
