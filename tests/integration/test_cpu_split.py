#!/usr/bin/python3
"""test_cpu_split - the benchmarks' CPU split (bench/common/cpu_split.py):
where each sampled call stack goes (the kernel's socket work, OpenSSL,
nghttp2, the event loop's kernel side, or the server's own code), checked
on stacks written as `perf script -F ip,sym,dso` prints them. The floors
the benchmarks print rest on these rules."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bench", "common"))
import cpu_split  # noqa: E402

K = "[kernel.kallsyms]"
ZERG = "/usr/sbin/zerg"
SSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
CRYPTO = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
NG2 = "/usr/lib/x86_64-linux-gnu/libnghttp2.so.14.24.1"
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
URING = "/usr/lib/x86_64-linux-gnu/liburing.so.2.3"
HTTP = "/memfd:http (deleted)"


def stack(*frames):
    """A sample's text, leaf first: (symbol, file) pairs."""
    return "\n".join(f"\t    ffff{i:04x} {sym} ({dso})" for i, (sym, dso) in enumerate(frames))


ENTER = [("__do_sys_io_uring_enter", K), ("do_syscall_64", K),
         ("entry_SYSCALL_64_after_hwframe", K), ("io_uring_enter2", URING),
         ("run_turn", ZERG), ("zg_event_loop", ZERG)]


def where(*frames):
    return cpu_split.classify(next(cpu_split._stacks(stack(*frames))))


class Classify(unittest.TestCase):
    def test_socket_work_first(self):
        """A send's stack is socket work, even under io_uring_enter or OpenSSL."""
        self.assertEqual(where(("tcp_write_xmit", K), ("tcp_sendmsg", K), ("io_send", K),
                               *ENTER), "tcp")
        self.assertEqual(where(("_copy_to_iter", K), ("tcp_recvmsg", K), ("sock_read_iter", K),
                               ("read", LIBC), ("bio_read", ZERG), ("SSL_read_ex", SSL)), "tcp")
        self.assertEqual(where(("inet_release", K), ("__fput", K), ("close", LIBC),
                               ("zg_conn_close", ZERG)), "tcp")

    def test_library_work(self):
        """The first library frame from the leaf names the owner; glibc and
        the kernel below it (a malloc, a page fault) are its work too."""
        self.assertEqual(where(("aesni_gcm_encrypt", CRYPTO), ("SSL_write_ex", SSL),
                               ("encrypt_record", ZERG)), "libssl")
        self.assertEqual(where(("_int_malloc", LIBC), ("CRYPTO_malloc", CRYPTO),
                               ("SSL_read_ex", SSL), ("read_plain", ZERG)), "libssl")
        self.assertEqual(where(("clear_page_erms", K), ("handle_mm_fault", K),
                               ("asm_exc_page_fault", K), ("nghttp2_session_mem_recv", NG2),
                               ("http2_on_data", HTTP)), "nghttp2")

    def test_callback_is_own_code(self):
        """A library's callback into the server is the server's own code."""
        self.assertIsNone(where(("on_header", HTTP), ("nghttp2_session_mem_recv", NG2),
                                ("http2_on_data", HTTP)))
        self.assertIsNone(where(("memcpy", LIBC), ("http2_write_head", HTTP),
                                ("http_write_head", HTTP)))

    def test_event_loop_kernel_side(self):
        """io_uring's task work, its wait and a send's preparation are evt;
        so is a peer's epoll_wait."""
        self.assertEqual(where(("io_poll_task_func", K), ("__io_run_local_work_loop", K),
                               ("__io_run_local_work", K), *ENTER), "evt")
        self.assertEqual(where(("finish_task_switch.isra.0", K), ("__schedule", K),
                               ("schedule", K), ("io_cqring_wait", K), *ENTER), "evt")
        self.assertEqual(where(("io_sendmsg_prep", K), ("io_submit_sqes", K), *ENTER), "evt")
        self.assertEqual(where(("ep_poll", K), ("do_epoll_wait", K),
                               ("__x64_sys_epoll_wait", K), ("do_syscall_64", K),
                               ("epoll_wait", LIBC), ("ngx_epoll_process_events", "/usr/sbin/nginx")),
                         "evt")

    def test_own_code(self):
        """User-space code and other system calls stay the server's own."""
        self.assertIsNone(where(("zg_pool_get", ZERG), ("zg_conn_complete", ZERG)))
        self.assertIsNone(where(("do_writev", K), ("do_syscall_64", K), ("writev", LIBC),
                                ("zg_log_flush", ZERG)))

    def test_shares(self):
        """shares_of adds the samples up; blocks are blank-line apart."""
        text = "\n\n".join([
            stack(("tcp_sendmsg", K), *ENTER),
            stack(("SSL_write_ex", SSL), ("encrypt_record", ZERG)),
            stack(("io_poll_task_func", K), *ENTER),
            stack(("zg_pool_get", ZERG))])
        shares, samples = cpu_split.shares_of(text)
        self.assertEqual(samples, 4)
        self.assertEqual(shares, {"tcp": 0.25, "libssl": 0.25, "nghttp2": 0.0, "evt": 0.25})
        self.assertIsNone(cpu_split.shares_of(""))


if __name__ == "__main__":
    unittest.main()
