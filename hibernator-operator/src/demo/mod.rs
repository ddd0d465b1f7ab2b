//! The README's demo: a small AWS estate in an emulator, hibernated and woken
//! up by `hibernator run`'s code path, with before/after tables.

pub mod estate;
