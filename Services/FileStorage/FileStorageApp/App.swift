import FileStorage
import Platform

@main
struct App {
    static func main() async {
        await ServiceMain.run(serviceName: FileStorageService.name, defaultPort: FileStorageService.defaultPort, build: FileStorageService.buildApplication)
    }
}
