/* nolookup.c - what OpenSSL's static library would otherwise pull into
 * this static-pie program: the name service (BIO_lookup's getaddrinfo,
 * BIO_gethostbyname) and dlopen (the DSO loader for engines and provider
 * modules).  glibc would load libnss_*.so and other shared objects into a
 * static program at run time (DESIGN.md), so the Makefile links smtpd with
 * --wrap for these symbols and they land here: smtpd resolves no names and
 * loads no modules, and OpenSSL's calls fail cleanly.  In a dynamically
 * linked build (SANITIZE=1) they are unused.
 */
#include <netdb.h>
#include <stddef.h>
#include <sys/socket.h>

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **result);
int __wrap_getnameinfo(const struct sockaddr *addr, socklen_t addrlen, char *host, socklen_t hostlen,
                       char *serv, socklen_t servlen, int flags);
void __wrap_freeaddrinfo(struct addrinfo *list);
struct hostent *__wrap_gethostbyname(const char *name);
struct servent *__wrap_getservbyname(const char *name, const char *proto);
void *__wrap_dlopen(const char *file, int mode);
void *__wrap_dlsym(void *handle, const char *name);
int __wrap_dlclose(void *handle);
char *__wrap_dlerror(void);
int __wrap_dladdr(const void *addr, void *info);

/* No name is ever resolved. */
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **result)
{
    (void)node, (void)service, (void)hints;
    *result = NULL;
    return EAI_FAIL;
}

int __wrap_getnameinfo(const struct sockaddr *addr, socklen_t addrlen, char *host, socklen_t hostlen,
                       char *serv, socklen_t servlen, int flags)
{
    (void)addr, (void)addrlen, (void)host, (void)hostlen, (void)serv, (void)servlen, (void)flags;
    return EAI_FAIL;
}

/* Nothing was ever allocated by __wrap_getaddrinfo. */
void __wrap_freeaddrinfo(struct addrinfo *list)
{
    (void)list;
}

struct hostent *__wrap_gethostbyname(const char *name)
{
    (void)name;
    return NULL;
}

struct servent *__wrap_getservbyname(const char *name, const char *proto)
{
    (void)name, (void)proto;
    return NULL;
}

/* No module is ever loaded. */
void *__wrap_dlopen(const char *file, int mode)
{
    (void)file, (void)mode;
    return NULL;
}

void *__wrap_dlsym(void *handle, const char *name)
{
    (void)handle, (void)name;
    return NULL;
}

int __wrap_dlclose(void *handle)
{
    (void)handle;
    return 0;
}

char *__wrap_dlerror(void)
{
    static char text[] = "modules are not loaded by this static program";
    return text;
}

int __wrap_dladdr(const void *addr, void *info)
{
    (void)addr, (void)info;
    return 0;
}
