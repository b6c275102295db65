//! STFL v1 binary format: loader and writer. (being written)
