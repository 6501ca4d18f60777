extension Array where Element == Double {
    /// The nearest-rank percentile `p` (0...1) of the samples; 0 when there are none.
    public func percentile(_ p: Double) -> Double {
        guard !isEmpty else { return 0 }
        let ordered = sorted()
        return ordered[Swift.min(ordered.count - 1, Swift.max(0, Int((p * Double(ordered.count)).rounded(.up)) - 1))]
    }
}
