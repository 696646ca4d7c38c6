//! Typed contracts: messages, events and stored values in `borsh`, state as maps and
//! items under a prefix, and entry points that take and return types.

use crate::{abort, input, output, storage};
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use core::marker::PhantomData;

/// Decodes the call's input as `I`, runs `handle`, and writes its `Ok` as the output or
/// aborts with its `Err` (nothing the call wrote then stands). Input that is not an
/// `I` aborts with "malformed message". What [`crate::contract!`] exports.
pub fn dispatch<I, O, E>(handle: fn(I) -> Result<O, E>)
where
    I: BorshDeserialize,
    O: BorshSerialize,
    E: AsRef<str>,
{
    let Ok(message) = I::try_from_slice(&input()) else {
        abort("malformed message");
    };
    match handle(message) {
        Ok(out) => match borsh::to_vec(&out) {
            Ok(bytes) => output(&bytes),
            Err(_) => abort("output does not encode"),
        },
        Err(e) => abort(e.as_ref()),
    }
}

/// [`crate::call`] with a typed message, the output decoded as `O` (what the callee's
/// [`dispatch`] wrote).
pub fn call_typed<M: BorshSerialize, O: BorshDeserialize>(
    name: &str,
    message: &M,
) -> Result<O, crate::CallError> {
    let out = crate::call(name, &encode(message))?;
    O::try_from_slice(&out).map_err(|_| crate::CallError::BadOutput)
}

/// [`crate::forward`], the output decoded as `O`.
pub fn forward_typed<O: BorshDeserialize>(
    name: &str,
    offset: usize,
) -> Result<O, crate::CallError> {
    let out = crate::forward(name, offset)?;
    O::try_from_slice(&out).map_err(|_| crate::CallError::BadOutput)
}

/// Records a typed event (commands only).
pub fn emit_typed<T: BorshSerialize>(event: &T) {
    match borsh::to_vec(event) {
        Ok(bytes) => crate::emit(&bytes),
        Err(_) => abort("event does not encode"),
    }
}

fn encode<T: BorshSerialize>(v: &T) -> Vec<u8> {
    borsh::to_vec(v).unwrap_or_else(|_| abort("value does not encode"))
}

fn decode<T: BorshDeserialize>(b: &[u8]) -> T {
    T::try_from_slice(b).unwrap_or_else(|_| abort("stored value does not decode"))
}

/// One typed value in the state, under `key`.
pub struct Item<T> {
    key: &'static [u8],
    _t: PhantomData<T>,
}

impl<T: BorshSerialize + BorshDeserialize> Item<T> {
    /// The item under `key`.
    pub const fn new(key: &'static [u8]) -> Self {
        Self {
            key,
            _t: PhantomData,
        }
    }

    /// Its value, if set.
    pub fn get(&self) -> Option<T> {
        storage::get(self.key).map(|b| decode(&b))
    }

    /// Sets it (commands only).
    pub fn set(&self, value: &T) {
        storage::set(self.key, &encode(value));
    }

    /// Removes it (commands only).
    pub fn remove(&self) {
        storage::remove(self.key);
    }
}

/// A typed map in the state: entry `k` lives under `prefix ‖ borsh(k)`. No iteration
/// (the host has none): keep a count or an index as an [`Item`] when one is needed.
pub struct Map<K, V> {
    prefix: &'static [u8],
    _kv: PhantomData<(K, V)>,
}

impl<K: BorshSerialize, V: BorshSerialize + BorshDeserialize> Map<K, V> {
    /// The map under `prefix` (end it with `/` to keep maps apart).
    pub const fn new(prefix: &'static [u8]) -> Self {
        Self {
            prefix,
            _kv: PhantomData,
        }
    }

    fn key(&self, k: &K) -> Vec<u8> {
        let mut key = self.prefix.to_vec();
        key.extend(encode(k));
        key
    }

    /// The value at `k`, if any.
    pub fn get(&self, k: &K) -> Option<V> {
        storage::get(&self.key(k)).map(|b| decode(&b))
    }

    /// Whether `k` has a value.
    pub fn contains(&self, k: &K) -> bool {
        storage::get(&self.key(k)).is_some()
    }

    /// Sets `k` (commands only).
    pub fn insert(&self, k: &K, v: &V) {
        storage::set(&self.key(k), &encode(v));
    }

    /// Removes `k` (commands only).
    pub fn remove(&self, k: &K) {
        storage::remove(&self.key(k));
    }
}
