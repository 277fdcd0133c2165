//! What the eBPF cost examples share (`classify_cost`, `rtt_cost`): one
//! run of a program through `BPF_PROG_TEST_RUN`, and the classifier loaded
//! with N tenants (/32s), two realm prefixes and N × 2 classes.

use aya::maps::lpm_trie::Key;
use aya::maps::{HashMap as BpfHash, LpmTrie};

const BPF_PROG_TEST_RUN: libc::c_long = 10;

#[repr(C)]
#[derive(Default)]
struct TestRun {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// One run of the program on `frame`: the kernel's ns.
#[allow(unsafe_code)]
pub fn run_once(fd: u32, frame: &[u8], out: &mut [u8]) -> u32 {
    let mut a = TestRun {
        prog_fd: fd,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ..Default::default()
    };
    // SAFETY: `a` is `bpf_attr.test`; the buffers outlive the call and
    // their sizes are the ones given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut a as *mut TestRun,
            std::mem::size_of::<TestRun>(),
        )
    };
    assert!(r == 0, "test run: {}", std::io::Error::last_os_error());
    a.duration
}

/// Tenant `i`'s address: 100.64.0.1 and on.
pub fn tenant(i: u32) -> [u8; 4] {
    (0x6440_0000u32 + i + 1).to_be_bytes()
}

/// 64 bytes: Ethernet, IPv4 (46 bytes), UDP 9 -> 5201, from 198.51.100.7
/// to `to`.
pub fn udp_frame(to: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..34].copy_from_slice(&[
        0x45, 0, 0, 50, 0, 1, 0, 0, 64, 17, 0, 0, 198, 51, 100, 7, 0, 0, 0, 0,
    ]);
    f[30..34].copy_from_slice(&to);
    f[34..42].copy_from_slice(&[0, 9, 0x14, 0x51, 0, 30, 0, 0]);
    f
}

/// The classifier's object loaded with `n` tenants 100.64.0.1…, two realm
/// prefixes and each tenant's class in both realms.
pub fn classifier_with_tenants(n: u32) -> aya::Ebpf {
    let mut obj = aya::Ebpf::load(bpf_classify::OBJECT).expect("load the object (root?)");
    {
        let mut t: LpmTrie<_, [u8; 4], u32> =
            LpmTrie::try_from(obj.map_mut("tg_tenants4").unwrap()).unwrap();
        for i in 0..n {
            t.insert(&Key::new(32, tenant(i)), i + 1, 0).unwrap();
        }
        let mut r: LpmTrie<_, [u8; 4], u32> =
            LpmTrie::try_from(obj.map_mut("tg_realms4").unwrap()).unwrap();
        r.insert(&Key::new(24, [192, 0, 2, 0]), 1, 0).unwrap();
        r.insert(&Key::new(24, [198, 51, 100, 0]), 1, 0).unwrap();
        let mut c: BpfHash<_, [u32; 2], u32> =
            BpfHash::try_from(obj.map_mut("tg_classes").unwrap()).unwrap();
        for i in 0..n {
            for realm in [1u32, 2] {
                let class = (2 + i / 1000) << 16 | (4 * (i % 1000) + 4);
                c.insert([i + 1, realm], class, 0).unwrap();
            }
        }
    }
    obj
}
