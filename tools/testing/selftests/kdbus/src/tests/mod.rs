//! The test table. Each test is a small function `fn(&Ctx) -> TestResult`.

mod activator;
mod broadcast;
mod bus_make;
mod conn;
mod disconnect;
mod fds;
mod fs;
mod hello;
mod info;
mod list;
mod matches;
mod memfd;
mod mmap;
mod monitor;
mod names;
mod notify;
mod pool;
mod quota;
mod race;
mod recv;
mod reply;
mod send;
mod teardown;
mod util;

use kdbus::{uapi, CmdBuf, Errno};

use crate::check::TestResult;
use crate::ctx::Ctx;

/// A test body.
pub type TestFn = fn(&Ctx) -> TestResult;
/// A named test.
pub type Test = (&'static str, TestFn);

/// Every test, in run order.
pub static TESTS: &[Test] = &[
    // control file / KDBUS_CMD_BUS_MAKE
    ("bus-make-modes-default", bus_make::modes_default),
    ("bus-make-modes-group", bus_make::modes_group),
    ("bus-make-modes-world", bus_make::modes_world),
    ("bus-make-owner-euid-egid", bus_make::owner_euid_egid),
    ("bus-make-close-removes-bus", bus_make::close_removes_bus),
    ("bus-make-name-prefix", bus_make::name_prefix),
    ("bus-make-name-chars", bus_make::name_chars),
    ("bus-make-name-too-long", bus_make::name_too_long),
    ("bus-make-name-duplicate", bus_make::name_duplicate),
    ("bus-make-bloom-parameters", bus_make::bloom_parameters),
    ("bus-make-missing-items", bus_make::missing_items),
    ("bus-make-unknown-item", bus_make::unknown_item),
    ("bus-make-duplicate-item", bus_make::duplicate_item),
    ("bus-make-unknown-flag", bus_make::unknown_flag),
    ("bus-make-negotiate-flags", bus_make::negotiate_flags),
    ("bus-make-negotiate-item", bus_make::negotiate_item),
    ("bus-make-cmd-size", bus_make::cmd_size),
    ("bus-make-unaligned-pointer", bus_make::unaligned_pointer),
    ("bus-make-twice", bus_make::twice),
    ("bus-make-attach-flags", bus_make::attach_flags),
    ("bus-make-item-framing", bus_make::item_framing),
    ("bus-make-unpadded-size", bus_make::unpadded_size),
    ("bus-make-string-items", bus_make::string_items),
    ("bus-make-max-buses", bus_make::max_buses),
    ("control-setup-ioctls", bus_make::control_setup_ioctls),
    ("control-unknown-ioctl", bus_make::unknown_ioctl),
    ("bus-owner-ioctls", bus_make::bus_owner_ioctls),
    // KDBUS_CMD_HELLO
    ("hello-basic", hello::basic),
    ("hello-bus-flags", hello::bus_flags),
    ("hello-ids-private-mount", hello::ids_private_mount),
    ("hello-pool-slice", hello::pool_slice),
    ("hello-free", hello::free),
    ("hello-pool-size", hello::pool_size),
    ("hello-cmd-size", hello::cmd_size),
    ("hello-unknown-flag", hello::unknown_flag),
    ("hello-negotiate-flags", hello::negotiate_flags),
    ("hello-negotiate-item", hello::negotiate_item),
    ("hello-name-without-type", hello::name_without_type),
    ("hello-conflicting-types", hello::conflicting_types),
    ("hello-description", hello::description),
    ("hello-attach-flags", hello::attach_flags),
    ("hello-twice", hello::twice),
    ("hello-unset-handle-ioctls", hello::unset_handle_ioctls),
    ("hello-bus-make-on-endpoint", hello::bus_make_on_endpoint),
    // mmap of the pool
    ("mmap-readonly", mmap::readonly),
    ("mmap-write-denied", mmap::write_denied),
    ("mmap-mprotect-write", mmap::mprotect_write),
    ("mmap-too-long", mmap::too_long),
    ("mmap-unset-handle", mmap::unset_handle),
    // BYEBYE, close, poll
    ("byebye-basic", conn::byebye_basic),
    ("byebye-close", conn::close),
    ("poll-active", conn::poll_active),
    ("poll-disconnected", conn::poll_disconnected),
    ("poll-unset-handle", conn::poll_unset_handle),
    // teardown and domains
    ("teardown-bus-close", teardown::bus_close),
    ("teardown-unset-handle", teardown::unset_handle),
    ("teardown-private-mount", teardown::private_mount),
    // filesystem
    ("fs-statfs-magic", fs::statfs_magic),
    ("fs-nodes", fs::nodes),
    ("fs-read-write", fs::read_write),
    ("fs-inode-numbers", fs::inode_numbers),
    // KDBUS_CMD_SEND
    ("send-basic", send::basic),
    ("send-to-self", send::to_self),
    ("send-src-id", send::src_id),
    ("send-payload-type", send::payload_type),
    ("send-msg-flags", send::msg_flags),
    ("send-call-header", send::call_header),
    ("send-signal-header", send::signal_header),
    ("send-unicast-signal-dropped", send::unicast_signal_dropped),
    ("send-destination", send::destination),
    ("send-peer-gone", send::peer_gone),
    ("send-msg-size", send::msg_size),
    ("send-cmd", send::cmd_send),
    ("send-item-framing", send::item_framing),
    ("send-unpadded-size", send::unpadded_size),
    ("send-vec-limits", send::vec_limits),
    ("send-vec-efault", send::vec_efault),
    ("send-negotiate", send::negotiate),
    ("send-not-ordinary", send::not_ordinary),
    ("send-validation-order", send::validation_order),
    ("send-header-passthrough", send::header_passthrough),
    ("send-return-flags", send::return_flags),
    ("send-large-payload", send::large_payload),
    ("send-from-pool", send::from_pool),
    // KDBUS_CMD_RECV, delivered layout, poll
    ("recv-empty", recv::empty),
    ("recv-fifo", recv::fifo),
    ("recv-priority", recv::priority),
    ("recv-priority-threshold", recv::priority_threshold),
    ("recv-peek", recv::peek),
    ("recv-drop", recv::drop_oldest),
    ("recv-drop-after-peek", recv::drop_after_peek),
    ("recv-cmd", recv::cmd),
    ("recv-layout-example", recv::layout_example),
    ("recv-layout-no-metadata", recv::layout_no_metadata),
    ("recv-layout-unaligned", recv::layout_unaligned),
    ("recv-layout-mixed", recv::layout_mixed),
    ("recv-no-payload", recv::no_payload),
    ("recv-timestamp", recv::timestamp),
    ("recv-update-attach", recv::update_attach),
    ("recv-sender-gone", recv::sender_gone),
    ("recv-poll", recv::poll),
    ("recv-epoll", recv::epoll),
    ("recv-poll-wakeup", recv::poll_wakeup),
    // pool slices
    ("pool-free-rules", pool::free_rules),
    ("pool-sequential", pool::sequential),
    ("pool-reuse", pool::reuse),
    ("pool-best-fit", pool::best_fit),
    ("pool-full", pool::full),
    // FDs and memfds
    ("fds-pass", fds::pass),
    ("fds-no-accept", fds::no_accept),
    ("fds-limit", fds::limit),
    ("fds-bad-fd", fds::bad_fd),
    ("fds-refused-types", fds::refused_types),
    ("fds-peek", fds::peek),
    ("fds-in-flight-release", fds::in_flight_release),
    ("fds-incomplete", fds::incomplete),
    ("fds-sync-reply", fds::sync_reply),
    ("memfd-pass", memfd::pass),
    ("memfd-range", memfd::range),
    ("memfd-seals", memfd::seals),
    ("memfd-not-memfd", memfd::not_memfd),
    ("memfd-limit", memfd::limit),
    ("memfd-peek", memfd::peek),
    ("memfd-sender-closes", memfd::sender_closes),
    // calls, replies, notifications
    ("reply-basic", reply::basic),
    ("reply-unsolicited", reply::unsolicited),
    ("reply-timeout", reply::timeout),
    ("reply-timeout-past", reply::timeout_past),
    ("reply-timeout-order", reply::timeout_order),
    ("reply-cancels-timeout", reply::reply_cancels_timeout),
    ("reply-dead-disconnect", reply::dead_on_disconnect),
    ("reply-dead-drop", reply::dead_on_drop),
    ("reply-caller-gone", reply::caller_gone),
    ("reply-max-pending", reply::max_pending),
    ("reply-to-self", reply::to_self),
    (
        "reply-timeout-after-caller-close",
        reply::timeout_after_caller_close,
    ),
    ("sync-basic", reply::sync_basic),
    ("sync-immediate-errors", reply::sync_immediate_errors),
    ("sync-timeout", reply::sync_timeout),
    ("sync-callee-dead", reply::sync_callee_dead),
    ("sync-cancel", reply::sync_cancel),
    ("sync-caller-disconnect", reply::sync_caller_disconnect),
    ("sync-eintr", reply::sync_eintr),
    ("sync-restart", reply::sync_restart),
    ("sync-resume-after-reply", reply::sync_resume_after_reply),
    ("sync-reply-undeliverable", reply::sync_reply_undeliverable),
    // CONN_INFO, BUS_CREATOR_INFO, LIST, UPDATE
    ("info-conn-info", info::conn_info),
    ("info-conn-info-errors", info::conn_info_errors),
    ("info-monitor-visibility", info::monitor_visibility),
    ("monitor-sees-traffic", monitor::sees_traffic),
    ("monitor-not-addressable", monitor::not_addressable),
    ("info-bus-creator", info::bus_creator_info),
    ("info-bus-creator-errors", info::bus_creator_info_errors),
    ("info-list", info::list),
    ("info-list-errors", info::list_errors),
    ("info-update", info::update),
    // receive quotas
    ("quota-bytes", quota::bytes),
    ("quota-messages", quota::messages),
    ("quota-fds", quota::fds),
    ("quota-other-user", quota::other_user),
    // disconnects
    ("disconnect-byebye-busy", disconnect::byebye_busy),
    ("disconnect-process-death", disconnect::process_death),
    ("disconnect-caller-byebye", disconnect::caller_byebye),
    (
        "disconnect-sync-caller-killed",
        disconnect::sync_caller_killed,
    ),
    // NAME_ACQUIRE / NAME_RELEASE
    ("name-acquire-new", names::acquire_new),
    ("name-acquire-again", names::acquire_again),
    ("name-acquire-replace", names::acquire_replace),
    ("name-acquire-queue", names::acquire_queue),
    ("name-acquire-leave-queue", names::acquire_leave_queue),
    ("name-acquire-eexist", names::acquire_eexist),
    ("name-acquire-invalid", names::acquire_invalid),
    ("name-acquire-limit", names::acquire_limit),
    ("name-release", names::release),
    ("name-queue-handover", names::queue_handover),
    ("name-queue-disconnect", names::queue_disconnect),
    ("name-not-ordinary", names::not_ordinary),
    ("name-owned-name-metadata", names::owned_name_metadata),
    ("name-send-by-name", names::send_by_name),
    // activators
    ("activator-hello", activator::hello),
    // Fails until the module is fixed: FINDINGS-7.md F1.
    ("activator-hello-order", activator::hello_order),
    // Fails until the module is fixed: FINDINGS-7.md F2.
    ("activator-hello-wildcard", activator::hello_wildcard),
    ("activator-restrictions", activator::restrictions),
    ("activator-not-owner", activator::not_owner),
    ("activator-handover", activator::handover),
    ("activator-name-back", activator::name_back),
    ("activator-move-lost", activator::move_lost),
    ("activator-tracker-received", activator::tracker_received),
    ("activator-registration-id", activator::registration_id),
    ("activator-move-quota", activator::move_quota),
    ("activator-sync-call", activator::sync_call),
    ("activator-reply-dead", activator::reply_dead),
    ("activator-moves", activator::moves_only_with_activator),
    // Fails until the module is fixed: FINDINGS-7.md F3.
    (
        "activator-send-while-name-moves",
        activator::send_while_name_moves,
    ),
    // LIST and CONN_INFO with names
    ("list-layout", list::layout),
    ("list-kinds", list::kinds),
    ("list-empty", list::empty),
    ("list-exfull", list::exfull),
    ("list-conn-info-name", list::conn_info_name),
    ("list-conn-info-owned-names", list::owned_names),
    // match database
    ("match-add-errors", matches::add_errors),
    ("match-remove", matches::remove),
    ("match-limit", matches::limit),
    ("match-replace", matches::replace),
    ("match-bloom", matches::bloom),
    ("match-bloom-generations", matches::bloom_generations),
    ("match-bloom-bus-size", matches::bloom_bus_size),
    ("match-name-rule", matches::name_rule),
    ("match-id-rule", matches::id_rule),
    ("match-dst-id-rule", matches::dst_id_rule),
    ("match-mixed-kinds", matches::mixed_kinds),
    ("match-empty-entry", matches::empty_entry),
    ("match-per-connection", matches::per_connection),
    ("match-negotiate-item", matches::negotiate_item),
    // broadcasts and signals
    ("broadcast-filter-size", broadcast::filter_size),
    ("broadcast-subset", broadcast::subset),
    ("broadcast-monitor", broadcast::monitor),
    ("broadcast-lost-quota", broadcast::lost_quota),
    ("broadcast-lost-pool", broadcast::lost_pool),
    ("broadcast-lost-monitor", broadcast::lost_monitor),
    ("broadcast-seqnum", broadcast::seqnum),
    ("broadcast-special", broadcast::special),
    ("broadcast-talk", broadcast::talk),
    ("broadcast-metadata-once", broadcast::metadata_once),
    ("signal-unicast", broadcast::unicast_signal),
    // kernel notifications
    ("notify-id", notify::id_notifications),
    ("notify-name-payloads", notify::name_payloads),
    ("notify-name-rules", notify::name_rules),
    ("notify-silent", notify::silent_operations),
    ("notify-disconnect-order", notify::disconnect_order),
    ("notify-cleanup", notify::cleanup),
    // races
    ("race-names", names::race),
    ("race-names-disconnect", names::race_disconnect),
    // Fails (intermittently: a race) until the module is fixed:
    // FINDINGS-7.md F3.
    ("race-activator", activator::race),
    ("race-many-senders", race::many_senders),
    ("race-many-receivers", race::many_receivers),
    ("race-sync-vs-callee-close", race::sync_vs_callee_close),
    ("race-sync-vs-caller-byebye", race::sync_vs_caller_byebye),
    ("race-send-vs-close", race::send_vs_close),
];

/// `KDBUS_ITEM_*` constants as `u64`.
pub mod item {
    use super::uapi;

    /// KDBUS_ITEM_NEGOTIATE.
    pub const NEGOTIATE: u64 = uapi::KDBUS_ITEM_NEGOTIATE as u64;
    /// KDBUS_ITEM_PAYLOAD_VEC.
    pub const PAYLOAD_VEC: u64 = uapi::KDBUS_ITEM_PAYLOAD_VEC as u64;
    /// KDBUS_ITEM_BLOOM_PARAMETER.
    pub const BLOOM_PARAMETER: u64 = uapi::KDBUS_ITEM_BLOOM_PARAMETER as u64;
    /// KDBUS_ITEM_MAKE_NAME.
    pub const MAKE_NAME: u64 = uapi::KDBUS_ITEM_MAKE_NAME as u64;
    /// KDBUS_ITEM_ATTACH_FLAGS_SEND.
    pub const ATTACH_FLAGS_SEND: u64 = uapi::KDBUS_ITEM_ATTACH_FLAGS_SEND as u64;
    /// KDBUS_ITEM_ATTACH_FLAGS_RECV.
    pub const ATTACH_FLAGS_RECV: u64 = uapi::KDBUS_ITEM_ATTACH_FLAGS_RECV as u64;
    /// KDBUS_ITEM_ID.
    pub const ID: u64 = uapi::KDBUS_ITEM_ID as u64;
    /// KDBUS_ITEM_NAME.
    pub const NAME: u64 = uapi::KDBUS_ITEM_NAME as u64;
    /// KDBUS_ITEM_CREDS.
    pub const CREDS: u64 = uapi::KDBUS_ITEM_CREDS as u64;
    /// KDBUS_ITEM_PIDS.
    pub const PIDS: u64 = uapi::KDBUS_ITEM_PIDS as u64;
    /// KDBUS_ITEM_SECLABEL.
    pub const SECLABEL: u64 = uapi::KDBUS_ITEM_SECLABEL as u64;
    /// KDBUS_ITEM_CONN_DESCRIPTION.
    pub const CONN_DESCRIPTION: u64 = uapi::KDBUS_ITEM_CONN_DESCRIPTION as u64;
    /// KDBUS_ITEM_POLICY_ACCESS.
    pub const POLICY_ACCESS: u64 = uapi::KDBUS_ITEM_POLICY_ACCESS as u64;
}

/// `KDBUS_MAKE_ACCESS_GROUP` as `u64`.
pub const ACCESS_GROUP: u64 = uapi::KDBUS_MAKE_ACCESS_GROUP as u64;
/// `KDBUS_MAKE_ACCESS_WORLD` as `u64`.
pub const ACCESS_WORLD: u64 = uapi::KDBUS_MAKE_ACCESS_WORLD as u64;

/// Issues `request` with `cmd` on `fd`.
pub fn raw(
    fd: impl std::os::fd::AsFd,
    request: uapi::kdbus_ioctl_type,
    cmd: &mut CmdBuf,
) -> Result<(), Errno> {
    kdbus::ioctl(fd, request, cmd.words_mut())
}

/// A minimal well-formed command for each connection ioctl, used to check
/// the handle-state errors: `(name, request, command)`.
pub fn connection_ioctls() -> Vec<(&'static str, uapi::kdbus_ioctl_type, CmdBuf)> {
    vec![
        ("UPDATE", uapi::KDBUS_CMD_UPDATE, CmdBuf::cmd(0)),
        ("BYEBYE", uapi::KDBUS_CMD_BYEBYE, CmdBuf::cmd(0)),
        ("FREE", uapi::KDBUS_CMD_FREE, CmdBuf::free(0)),
        ("CONN_INFO", uapi::KDBUS_CMD_CONN_INFO, {
            let mut c = CmdBuf::new(kdbus::CMD_INFO_SIZE);
            c.set_u64(24, 1);
            c
        }),
        (
            "BUS_CREATOR_INFO",
            uapi::KDBUS_CMD_BUS_CREATOR_INFO,
            CmdBuf::new(kdbus::CMD_INFO_SIZE),
        ),
        (
            "LIST",
            uapi::KDBUS_CMD_LIST,
            CmdBuf::new(kdbus::CMD_LIST_SIZE),
        ),
        (
            "RECV",
            uapi::KDBUS_CMD_RECV,
            CmdBuf::new(kdbus::CMD_RECV_SIZE),
        ),
        ("NAME_RELEASE", uapi::KDBUS_CMD_NAME_RELEASE, {
            let mut c = CmdBuf::cmd(0);
            c.push_str(item::NAME, "org.example.Kdbus");
            c
        }),
        (
            "MATCH_REMOVE",
            uapi::KDBUS_CMD_MATCH_REMOVE,
            CmdBuf::new(kdbus::CMD_MATCH_SIZE),
        ),
    ]
}
