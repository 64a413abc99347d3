//! Shared by the fuzz targets: a codec context chosen by one input byte, so each target
//! covers every combination of negotiated capabilities that changes how UPDATEs decode.

use bgp_proto::{CodecContext, Family};

pub fn context_from(selector: u8) -> CodecContext {
    let families = |bit: u8| {
        let mut v = Vec::new();
        if selector & bit != 0 {
            v.push(Family::IPV4_UNICAST);
            v.push(Family::IPV6_UNICAST);
        }
        v
    };
    CodecContext {
        four_octet_as: selector & 1 != 0,
        extended_message: selector & 2 != 0,
        add_path_receive: families(4),
        add_path_send: families(8),
        external: selector & 16 != 0,
    }
}
