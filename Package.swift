// swift-tools-version: 6.2
import PackageDescription

/// The six services: (directory and module name, executable product name, dependencies beyond the shared ones).
let services: [(module: String, product: String, dependencies: [Target.Dependency])] = [
    ("AuthGateway", "auth-gateway", [
        .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "JWTKit", package: "jwt-kit"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
    ]),
    ("ConnectionsVault", "connections-vault", [
        .product(name: "Crypto", package: "swift-crypto"),
    ]),
    ("Scheduler", "scheduler", [
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Crypto", package: "swift-crypto"),
    ]),
    ("PipelineRunner", "pipeline-runner", [
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ]),
    ("FileStorage", "file-storage", []),
    ("Observability", "observability", []),
]

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")

var targets: [Target] = [
    .systemLibrary(name: "CLibPQ", path: "Shared/CLibPQ", pkgConfig: "libpq",
                   providers: [.apt(["libpq-dev"])]),
    .systemLibrary(name: "CHiredis", path: "Shared/CHiredis", pkgConfig: "hiredis",
                   providers: [.apt(["libhiredis-dev"])]),
    .systemLibrary(name: "CCurl", path: "Shared/CCurl", pkgConfig: "libcurl",
                   providers: [.apt(["libcurl4-openssl-dev"])]),
    .target(
        name: "SharedModels",
        path: "Shared/Models",
        swiftSettings: swiftSettings
    ),
    .target(
        name: "Platform",
        dependencies: [
            "CLibPQ", "CHiredis", "CCurl", "SharedModels",
            hummingbird,
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Yams", package: "Yams"),
        ],
        path: "Shared/Platform",
        swiftSettings: swiftSettings
    ),
    .target(
        name: "PlatformTesting",
        dependencies: [
            "Platform",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        path: "Shared/PlatformTesting",
        swiftSettings: swiftSettings
    ),
    .executableTarget(
        name: "PlatformBench",
        dependencies: [
            "Platform", "ConnectionsVault", "Scheduler", hummingbird,
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        path: "bench/PlatformBench",
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "PlatformTests",
        dependencies: [
            "Platform", "PlatformTesting", "SharedModels", hummingbird,
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Crypto", package: "swift-crypto"),
        ],
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "AuthGatewayTests",
        dependencies: [
            "AuthGateway", "Platform", "SharedModels",
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ],
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "ConnectionsVaultTests",
        dependencies: [
            "ConnectionsVault", "Platform", "PlatformTesting", "SharedModels", hummingbird,
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
        ],
        resources: [.copy("Fixtures")],
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "SchedulerTests",
        dependencies: ["Scheduler", "Platform", "SharedModels"],
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "PipelineRunnerTests",
        dependencies: [
            "PipelineRunner", "Platform", "PlatformTesting", "SharedModels", hummingbird,
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ],
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "DeploymentTests",
        dependencies: [.product(name: "Yams", package: "Yams")],
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "IntegrationTests",
        dependencies: [
            "Platform", "PlatformTesting", "SharedModels",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ] + services.map { .target(name: $0.module) },
        swiftSettings: swiftSettings
    ),
]

var products: [Product] = [
    .executable(name: "platform-bench", targets: ["PlatformBench"]),
]

// Each service is a library (everything testable) plus a thin executable that only boots it.
for service in services {
    targets.append(.target(
        name: service.module,
        dependencies: ["Platform", "SharedModels", hummingbird] + service.dependencies,
        path: "Services/\(service.module)/\(service.module)",
        resources: [.copy("Migrations"), .copy("OpenAPI")],
        swiftSettings: swiftSettings
    ))
    targets.append(.executableTarget(
        name: "\(service.module)App",
        dependencies: [.target(name: service.module), "Platform"],
        path: "Services/\(service.module)/\(service.module)App",
        swiftSettings: swiftSettings
    ))
    products.append(.executable(name: service.product, targets: ["\(service.module)App"]))
}

let package = Package(
    name: "data-platform",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0",
                 traits: [.defaults, "CommandLineArguments"]),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
    ],
    targets: targets
)
