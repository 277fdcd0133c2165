//! rtnetlink socket (being written).
