//! Text assembly format: assembler and disassembler. (being written)
