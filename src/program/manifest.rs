//! The program manifest (STFL v2+): which MPC backend and curve the program was compiled
//! for, what each client sends and receives, and how much preprocessing it needs. stoffel-vm
//! runs no MPC, so it only carries the manifest (files round-trip, tools show it).

use std::fmt;

/// The MPC protocol a program was compiled for (STFL v3+, one byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MpcBackend {
    /// \[0\] HoneyBadger (the default, and what v2 files imply).
    #[default]
    HoneyBadger,
    /// \[1\] AVSS.
    Avss,
}

/// The curve a program was compiled for (STFL v4+, one byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MpcCurve {
    /// \[0\] BLS12-381 (the default, and what v2/v3 files imply).
    #[default]
    Bls12_381,
    /// \[1\] BN254.
    Bn254,
    /// \[2\] Curve25519.
    Curve25519,
    /// \[3\] Ed25519.
    Ed25519,
    /// \[4\] secp256k1.
    Secp256k1,
    /// \[5\] secp256r1 (P-256).
    Secp256r1,
}

impl MpcBackend {
    /// Every backend, in tag order (the index is the STFL byte).
    pub const ALL: [MpcBackend; 2] = [MpcBackend::HoneyBadger, MpcBackend::Avss];

    /// The assembly spelling.
    pub fn name(self) -> &'static str {
        match self {
            MpcBackend::HoneyBadger => "honeybadger",
            MpcBackend::Avss => "avss",
        }
    }
}

impl MpcCurve {
    /// Every curve, in tag order (the index is the STFL byte).
    pub const ALL: [MpcCurve; 6] = [
        MpcCurve::Bls12_381,
        MpcCurve::Bn254,
        MpcCurve::Curve25519,
        MpcCurve::Ed25519,
        MpcCurve::Secp256k1,
        MpcCurve::Secp256r1,
    ];

    /// The assembly spelling.
    pub fn name(self) -> &'static str {
        match self {
            MpcCurve::Bls12_381 => "bls12_381",
            MpcCurve::Bn254 => "bn254",
            MpcCurve::Curve25519 => "curve25519",
            MpcCurve::Ed25519 => "ed25519",
            MpcCurve::Secp256k1 => "secp256k1",
            MpcCurve::Secp256r1 => "secp256r1",
        }
    }
}

/// The type of one secret value a client sends or receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareType {
    /// \[0\] A signed secret integer of `bit_length` bits (never 0).
    SecretInt {
        /// Width in bits.
        bit_length: u32,
    },
    /// \[1\] A secret fixed-point number (`fractional_bits < total_bits`).
    SecretFixedPoint {
        /// Total width in bits (never 0).
        total_bits: u32,
        /// Bits after the binary point.
        fractional_bits: u32,
    },
    /// \[2\] An unsigned secret integer of `bit_length` bits (never 0).
    SecretUInt {
        /// Width in bits.
        bit_length: u32,
    },
}

impl ShareType {
    /// Why the original VM refuses this share type, if it does.
    pub fn problem(&self) -> Option<&'static str> {
        match *self {
            ShareType::SecretInt { bit_length: 0 } | ShareType::SecretUInt { bit_length: 0 } => {
                Some("bit_length must be a positive integer")
            }
            ShareType::SecretFixedPoint { total_bits: 0, .. } => {
                Some("total_bits must be a positive integer")
            }
            ShareType::SecretFixedPoint {
                total_bits,
                fractional_bits,
            } if fractional_bits >= total_bits => Some("frac_bits must be less than total_bits"),
            _ => None,
        }
    }
}

impl fmt::Display for ShareType {
    /// The assembly spelling: `int<64>`, `uint<8>`, `fixed<64, 16>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareType::SecretInt { bit_length } => write!(f, "int<{bit_length}>"),
            ShareType::SecretUInt { bit_length } => write!(f, "uint<{bit_length}>"),
            ShareType::SecretFixedPoint {
                total_bits,
                fractional_bits,
            } => write!(f, "fixed<{total_bits}, {fractional_bits}>"),
        }
    }
}

/// What one client sends to the program and receives from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientIo {
    /// The client's slot number.
    pub client_slot: u64,
    /// Types of the values it sends, in order.
    pub inputs: Vec<ShareType>,
    /// Types of the values it receives, in order.
    pub outputs: Vec<ShareType>,
}

/// The preprocessing material a program needs (STFL v8+).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PreprocessingDemand {
    /// Beaver triples.
    pub triples: u64,
    /// Random shares.
    pub randoms: u64,
    /// Pseudo-random bits.
    pub prandbits: u64,
    /// Pseudo-random integers.
    pub prandints: u64,
    /// The need is open-ended (recursion, data-dependent loops): the counts are a floor.
    pub dynamic: bool,
}

/// The manifest of a program (STFL v2+).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// MPC backend (v3+; HoneyBadger before).
    pub backend: MpcBackend,
    /// MPC curve (v4+; BLS12-381 before).
    pub curve: MpcCurve,
    /// Client IO schemas, in file order.
    pub clients: Vec<ClientIo>,
    /// Preprocessing demand (v8+; zero before).
    pub demand: PreprocessingDemand,
}

impl Manifest {
    /// Whether this is the manifest a program without one implies (what the compiler writes
    /// for a program that uses no MPC): a [`Program`](super::Program) keeps it as no manifest
    /// (the canonical form).
    pub fn is_default(&self) -> bool {
        *self == Manifest::default()
    }

    /// The lowest STFL version that can hold this manifest (0 for the default one).
    pub fn needed_version(&self) -> u16 {
        if self.demand != PreprocessingDemand::default() {
            8
        } else if self.curve != MpcCurve::default() {
            4
        } else if self.backend != MpcBackend::default() {
            3
        } else if !self.clients.is_empty() {
            2
        } else {
            0
        }
    }
}
