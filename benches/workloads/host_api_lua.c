/*
 * host_api_lua.c: the host-boundary workloads for PUC Lua 5.4, through its C API. Same work
 * as host_api_stoffel.c.
 *
 *   host_api_lua calls N      N calls from C of the Lua function f(a, b) = (a + b) % 1000003
 *                             (lua_getglobal + lua_pcall each time): s = f(s, i), i = 0 .. N-1
 *   host_api_lua cached N     the same N calls of f kept in the registry (luaL_ref once,
 *                             lua_rawgeti each call): the counterpart of a looked-up handle
 *   host_api_lua callbacks N  one Lua chunk whose loop makes N calls of the C function
 *                             host_f(a, b) = (a + b) % 1000003 (registered with lua_register)
 *   host_api_lua lifecycle N  N times: luaL_newstate, luaL_loadstring of a small chunk,
 *                             lua_pcall of it with i (g(i) = (7i + 3) % 1000003), lua_close:
 *                             s = (s + g(i)) % 1000003
 *
 * Prints s on stdout and the process's peak RSS ("peak_rss_kb=N", from VmHWM) on stderr.
 * Built and run by benches/vs_lua.rs:
 *   gcc -O2 -std=c99 -I/usr/include/lua5.4 host_api_lua.c -llua5.4
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char *FUNCTION = "function f(a, b) return (a + b) % 1000003 end";

static const char *CALLBACKS =
    "local n = ...\n"
    "local host_f = host_f\n"
    "local s = 0\n"
    "for i = 0, n - 1 do\n"
    "  s = host_f(s, i)\n"
    "end\n"
    "return s\n";

static const char *SMALL_CHUNK = "local i = ...\nreturn (i * 7 + 3) % 1000003\n";

static int host_f(lua_State *L)
{
    lua_Integer a = luaL_checkinteger(L, 1);
    lua_Integer b = luaL_checkinteger(L, 2);
    lua_pushinteger(L, (a + b) % 1000003);
    return 1;
}

static void fail(lua_State *L, const char *what)
{
    fprintf(stderr, "%s failed: %s\n", what, lua_tostring(L, -1));
    exit(1);
}

static void report_peak_rss(void)
{
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    if (status == NULL) {
        return;
    }
    while (fgets(line, sizeof line, status) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            fprintf(stderr, "peak_rss_kb=%ld\n", strtol(line + 6, NULL, 10));
        }
    }
    fclose(status);
}

/* N Lua state lifecycles: create, load, run, close. */
static lua_Integer lifecycles(lua_Integer n)
{
    lua_Integer s = 0;
    for (lua_Integer i = 0; i < n; i++) {
        lua_State *L = luaL_newstate();
        if (L == NULL) {
            fprintf(stderr, "luaL_newstate failed\n");
            exit(1);
        }
        if (luaL_loadstring(L, SMALL_CHUNK) != LUA_OK) {
            fail(L, "luaL_loadstring");
        }
        lua_pushinteger(L, i);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            fail(L, "lua_pcall");
        }
        s = (s + lua_tointeger(L, -1)) % 1000003;
        lua_close(L);
    }
    return s;
}

int main(int argc, char **argv)
{
    const char *modes[] = {"calls", "cached", "callbacks", "lifecycle"};
    int known = 0;
    for (size_t m = 0; argc == 3 && m < sizeof modes / sizeof modes[0]; m++) {
        known |= strcmp(argv[1], modes[m]) == 0;
    }
    if (!known) {
        fprintf(stderr, "usage: %s calls|cached|callbacks|lifecycle N\n", argv[0]);
        return 2;
    }
    const lua_Integer n = strtoll(argv[2], NULL, 10);
    if (strcmp(argv[1], "lifecycle") == 0) {
        printf("%lld\n", (long long)lifecycles(n));
        fflush(stdout);
        report_peak_rss();
        return 0;
    }
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "luaL_newstate failed\n");
        return 1;
    }
    luaL_openlibs(L);
    lua_Integer s = 0;
    if (strcmp(argv[1], "calls") == 0) {
        if (luaL_dostring(L, FUNCTION) != LUA_OK) {
            fail(L, "luaL_dostring");
        }
        for (lua_Integer i = 0; i < n; i++) {
            lua_getglobal(L, "f");
            lua_pushinteger(L, s);
            lua_pushinteger(L, i);
            if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
                fail(L, "lua_pcall");
            }
            int ok = 0;
            s = lua_tointegerx(L, -1, &ok);
            if (!ok) {
                fprintf(stderr, "f returned a non-integer\n");
                return 1;
            }
            lua_pop(L, 1);
        }
    } else if (strcmp(argv[1], "cached") == 0) {
        if (luaL_dostring(L, FUNCTION) != LUA_OK) {
            fail(L, "luaL_dostring");
        }
        lua_getglobal(L, "f");
        const int f = luaL_ref(L, LUA_REGISTRYINDEX);
        for (lua_Integer i = 0; i < n; i++) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, f);
            lua_pushinteger(L, s);
            lua_pushinteger(L, i);
            if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
                fail(L, "lua_pcall");
            }
            int ok = 0;
            s = lua_tointegerx(L, -1, &ok);
            if (!ok) {
                fprintf(stderr, "f returned a non-integer\n");
                return 1;
            }
            lua_pop(L, 1);
        }
    } else {
        lua_register(L, "host_f", host_f);
        if (luaL_loadstring(L, CALLBACKS) != LUA_OK) {
            fail(L, "luaL_loadstring");
        }
        lua_pushinteger(L, n);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            fail(L, "lua_pcall");
        }
        s = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    printf("%lld\n", (long long)s);
    fflush(stdout);
    lua_close(L);
    report_peak_rss();
    return 0;
}
