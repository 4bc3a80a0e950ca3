import Glibc

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Sleeps until `deadline` (monotonic seconds).
func sleep(until deadline: Double) {
    while true {
        let left = deadline - monotonicSeconds()
        if left <= 0 { return }
        var ts = timespec(tv_sec: Int(left), tv_nsec: Int((left - Double(Int(left))) * 1e9))
        nanosleep(&ts, nil)
    }
}
