//! Fresh ids in the real formats: a prefix and 32 hex digits.

use uuid::Uuid;

/// A response id: `resp_` + 32 hex digits.
pub(crate) fn response() -> String {
    format!("resp_{}", hex32())
}

/// A message item id: `msg_` + 32 hex digits.
pub(crate) fn message() -> String {
    format!("msg_{}", hex32())
}

/// An id for a non-message item: `item_` + 32 hex digits.
pub(crate) fn item() -> String {
    format!("item_{}", hex32())
}

/// A function call item id: `fc_` + 32 hex digits.
pub(crate) fn function_call() -> String {
    format!("fc_{}", hex32())
}

/// A function call's `call_id`: `call_` + 24 hex digits (the random end of a v7 UUID).
pub(crate) fn call() -> String {
    format!("call_{}", &hex32()[8..])
}

/// A reasoning item id: `rs_` + 32 hex digits.
pub(crate) fn reasoning() -> String {
    format!("rs_{}", hex32())
}

/// A conversation id: `conv_` + 32 hex digits.
pub(crate) fn conversation() -> String {
    format!("conv_{}", hex32())
}

/// A request id for `x-request-id`: `req_` + 32 hex digits.
pub(crate) fn request() -> String {
    format!("req_{}", hex32())
}

/// A chat completion id: `chatcmpl-` + 29 hex digits.
pub(crate) fn chat_completion() -> String {
    format!("chatcmpl-{}", &hex32()[3..])
}

/// 32 lowercase hex digits from a v7 UUID (time-ordered, unique within the process).
fn hex32() -> String {
    Uuid::now_v7().simple().to_string()
}
