//! The test table. Each test is a small function `fn(&Ctx) -> TestResult`.

mod activator;
mod bounds;
mod broadcast;
mod bus_make;
mod cancel;
mod conn;
mod disconnect;
mod endpoint;
mod fds;
mod fs;
mod fuse;
mod hello;
mod info;
mod list;
mod matches;
mod memfd;
mod metadata;
mod mmap;
mod monitor;
mod names;
mod notify;
mod policy;
mod policy_talk;
mod pool;
mod quota;
mod race;
mod recv;
mod reply;
mod send;
mod stall;
mod sys;
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
    ("bus-make-readonly-cmd", bus_make::readonly_cmd),
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
    ("hello-pids-size", hello::pids_size),
    ("hello-setup-after-byebye", hello::setup_after_byebye),
    // mmap of the pool
    ("mmap-readonly", mmap::readonly),
    ("mmap-write-denied", mmap::write_denied),
    ("mmap-mprotect-write", mmap::mprotect_write),
    ("mmap-too-long", mmap::too_long),
    ("mmap-unset-handle", mmap::unset_handle),
    ("mmap-offset", mmap::offset),
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
    ("fds-io-uring", fds::io_uring),
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
    (
        "sync-past-deadline-unknown-dst",
        reply::sync_past_deadline_unknown_dst,
    ),
    // CONN_INFO, BUS_CREATOR_INFO, LIST, UPDATE
    ("info-conn-info", info::conn_info),
    ("info-conn-info-errors", info::conn_info_errors),
    ("info-monitor-visibility", info::monitor_visibility),
    ("monitor-sees-traffic", monitor::sees_traffic),
    ("monitor-not-addressable", monitor::not_addressable),
    ("monitor-fds-no-accept", monitor::fds_no_accept),
    ("info-bus-creator", info::bus_creator_info),
    ("info-bus-creator-errors", info::bus_creator_info_errors),
    ("info-list", info::list),
    ("info-list-errors", info::list_errors),
    ("info-update", info::update),
    // metadata
    ("metadata-each-item", metadata::each_item),
    ("metadata-all-items", metadata::all_items),
    ("metadata-once-per-message", metadata::once_per_message),
    (
        "metadata-cache-follows-changes",
        metadata::cache_follows_changes,
    ),
    (
        "metadata-cache-follows-reparent",
        metadata::cache_follows_reparent,
    ),
    ("metadata-receiver-mask", metadata::receiver_mask),
    ("metadata-conn-info", metadata::conn_info),
    ("metadata-bus-creator-info", metadata::bus_creator_info),
    ("metadata-faked", metadata::faked),
    ("metadata-user-pid-namespace", metadata::user_pid_namespace),
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
    // CANCEL_FD of synchronous calls, every kind of pollable file
    ("cancel-pty", cancel::pty),
    ("cancel-console", cancel::console),
    ("cancel-pipe-rdwr", cancel::pipe_rdwr),
    ("cancel-pipe", cancel::pipe),
    ("cancel-eventfd", cancel::eventfd),
    ("cancel-socket", cancel::socket),
    ("cancel-timerfd", cancel::timerfd),
    ("cancel-signalfd", cancel::signalfd),
    ("cancel-kdbus-peer", cancel::kdbus_peer),
    ("cancel-kdbus-own", cancel::kdbus_own),
    ("cancel-fuse-poll-first", cancel::fuse_poll_first),
    ("cancel-fuse-poll-later", cancel::fuse_poll_later),
    // TALK policy between peers without names
    ("policy-talk-other-uid", policy_talk::other_uid),
    ("policy-talk-owner", policy_talk::owner),
    ("policy-talk-reply", policy_talk::reply_allowed),
    // the bus policy database and its checks
    ("policy-upload-errors", policy::upload_errors),
    ("policy-upload-userns", policy::upload_userns),
    ("policy-holder-rules", policy::holder_rules),
    ("policy-update", policy::update),
    ("policy-query", policy::query),
    ("policy-own", policy::own_rules),
    ("policy-cap-ipc-owner", policy::cap_ipc_owner),
    ("policy-talk", policy::talk),
    ("policy-signals", policy::signals),
    // custom endpoints
    ("endpoint-make", endpoint::make_rules),
    ("endpoint-file-mode", endpoint::file_mode),
    ("endpoint-update", endpoint::update),
    ("endpoint-teardown", endpoint::teardown),
    ("endpoint-hello", endpoint::hello_types),
    ("endpoint-both-databases", endpoint::both_databases),
    ("endpoint-visibility", endpoint::visibility),
    ("endpoint-empty-db", endpoint::empty_db),
    ("endpoint-accounting", endpoint::accounting),
    // bounded kernel arrays
    ("bounds-conn-info-slices", bounds::conn_info_slices),
    ("bounds-queue-many-users", bounds::queue_many_users),
    // SENDs stalled by userspace vs. the bus teardown
    ("stall-uffd-payload", stall::uffd_payload),
    ("stall-uffd-msg", stall::uffd_msg),
    ("stall-uffd-cmd", stall::uffd_cmd),
];

/// Tests whose work grows with a kernel limit (thousands of ioctls) and
/// therefore get at least this timeout, in seconds, whatever `--timeout`
/// says; they bound their own loops well inside it.
static MIN_TIMEOUTS: &[(&str, u64)] = &[
    ("bounds-conn-info-slices", 400),
    ("bounds-queue-many-users", 400),
];

/// The minimum timeout of test `name`, if it has one.
pub fn min_timeout(name: &str) -> Option<std::time::Duration> {
    MIN_TIMEOUTS
        .iter()
        .find(|t| t.0 == name)
        .map(|t| std::time::Duration::from_secs(t.1))
}

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
