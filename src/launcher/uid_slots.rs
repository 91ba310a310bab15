//! Per-session host uids for a root supervisor: one unprivileged uid per live
//! session, the lowest free one first.

use std::collections::BTreeSet;

/// Slots above this are refused: uids stay within `uid_base + MAX_SESSION_UIDS`.
pub const MAX_SESSION_UIDS: u32 = 1_000_000;

/// Hands out the lowest free slot, so uids stay small and reused.
#[derive(Default)]
pub struct UidSlots {
    next_unused: u32,
    returned: BTreeSet<u32>,
}

impl UidSlots {
    pub fn take(&mut self) -> Option<u32> {
        if let Some(slot) = self.returned.pop_first() {
            return Some(slot);
        }
        (self.next_unused < MAX_SESSION_UIDS).then(|| {
            self.next_unused += 1;
            self.next_unused - 1
        })
    }

    pub fn give_back(&mut self, slot: u32) {
        self.returned.insert(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_slots_are_reused_lowest_first() {
        let mut slots = UidSlots::default();
        assert_eq!(slots.take(), Some(0));
        assert_eq!(slots.take(), Some(1));
        assert_eq!(slots.take(), Some(2));
        slots.give_back(1);
        slots.give_back(0);
        assert_eq!(slots.take(), Some(0));
        assert_eq!(slots.take(), Some(1));
        assert_eq!(slots.take(), Some(3));
    }
}
